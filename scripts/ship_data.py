"""Copy the licensed slices this repo ships out of ../shared/corpus (run from the repo root).

Decontamination benchmarks go to data/benchmarks/ (question text only, plus ids); the sample
build's prompt sources go to data/sample/. Licenses and attributions: data/*/ATTRIBUTION.md.
GPQA, AlignBench and AIME are NOT shipped (GPQA's authors ask that it stay off the web;
AlignBench and AIME 2025 declare no license): recipes pass them by path, optional.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zipfile
from pathlib import Path

CORPUS = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), "../shared/corpus"))
OUT = Path("data/benchmarks")


def jsonl_rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write(name: str, rows: list[dict]) -> None:
    with (OUT / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} rows")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write("gsm8k_test", [{"id": f"gsm8k-test-{i}", "question": r["question"]}
                         for i, r in enumerate(jsonl_rows(CORPUS / "gsm8k/test.jsonl"))])
    write("math500", [{"id": r.get("unique_id", f"math500-{i}"), "problem": r["problem"]}
                      for i, r in enumerate(jsonl_rows(CORPUS / "limo-eval/math.jsonl"))])
    write("humaneval", [{"id": r["task_id"], "prompt": r["prompt"]}
                        for r in jsonl_rows(CORPUS / "humaneval/HumanEval.jsonl.gz")])
    write("ifeval", [{"id": f"ifeval-{r['key']}", "prompt": r["prompt"]}
                     for r in jsonl_rows(CORPUS / "ifeval/input_data.jsonl")])
    write("mt_bench", [{"id": f"mt-bench-{r['question_id']}", "turns": r["turns"]}
                       for r in jsonl_rows(CORPUS / "mt-bench/question.jsonl")])
    mmlu: list[dict] = []
    with zipfile.ZipFile(CORPUS / "mmlu-ceval-cmmlu/mmlu.zip") as z:
        for name in sorted(n for n in z.namelist() if "/test/" in n and n.endswith(".csv")):
            subject = Path(name).stem.removesuffix("_test")
            reader = csv.reader(io.StringIO(z.read(name).decode("utf-8")))
            for i, cells in enumerate(reader):
                q, *choices = cells[:5]
                mmlu.append({"id": f"mmlu-{subject}-{i}", "question": q, "choices": choices})
    write("mmlu_test", mmlu)


if __name__ == "__main__" and "--sample" not in sys.argv:
    main()


SAMPLE = Path("data/sample")


def head_jsonl(src: Path, n: int) -> list[dict]:
    return jsonl_rows(src)[:n]


def dump_jsonl(name: str, rows: list[dict]) -> None:
    with (SAMPLE / name).open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"sample/{name}: {len(rows)} rows")


def with_key_response(row: dict) -> dict:
    """An MMLU-Pro row plus `key_response`: its community answer, the answer key, in MMLU-Pro's
    own phrasing ("The answer is (X)."). The same prompts carry a real reasoning trace, so the
    sample's `original`, `answer` and `think_summary` configs share these prompt_ids."""
    return {**row, "key_response": f"The answer is ({row['answer_letter']})."}


def sample() -> None:
    """The sample build's sources: small real slices, plus planted duplicates and leaks."""
    import re

    SAMPLE.mkdir(parents=True, exist_ok=True)
    dump_jsonl("pcmb_traces.jsonl", [with_key_response(r) for r in
                                     head_jsonl(CORPUS / "r1-mmlupro-pcmb-traces/pcmb_traces.jsonl", 120)])
    dump_jsonl("bangla_r1.jsonl", head_jsonl(CORPUS / "r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl", 120))
    gsm = head_jsonl(CORPUS / "gsm8k/train.jsonl", 150)
    dump_jsonl("gsm8k_train.jsonl", gsm)
    # Planted duplicates of the GSM8K slice: exact (case/space), near (edits), and
    # number-only variants that must survive dedupe because they are different problems.
    planted = []
    for i, r in enumerate(gsm[:10]):
        planted.append({"id": f"exact-{i}", "kind": "exact_dup", "question": "  " + r["question"].upper().replace(" ", "  ")})
    for i, r in enumerate(gsm[10:20]):
        q = r["question"].replace(",", "").replace("?", " ?")
        words = q.split()
        words[len(words) // 2] = "really " + words[len(words) // 2]
        planted.append({"id": f"near-{i}", "kind": "near_dup", "question": " ".join(words)})
    for i, r in enumerate(gsm[20:30]):
        q = re.sub(r"\d+", lambda m: str(int(m.group()) + 7), r["question"])
        planted.append({"id": f"numbers-{i}", "kind": "number_variant", "question": q})
    leaks = jsonl_rows(CORPUS / "gsm8k/test.jsonl")[:5]
    for i, r in enumerate(leaks):
        planted.append({"id": f"leak-gsm8k-{i}", "kind": "leak", "question": r["question"]})
    for i, r in enumerate(jsonl_rows(CORPUS / "limo-eval/math.jsonl")[:3]):
        planted.append({"id": f"leak-math500-{i}", "kind": "leak", "question": "Please solve: " + r["problem"]})
    dump_jsonl("planted.jsonl", planted)
    dump_jsonl("tool_use.jsonl", head_jsonl(CORPUS / "llamafactory-demo-data/reason_tool_use_demo_50.jsonl", 50))
    zh = json.loads((CORPUS / "llamafactory-demo-data/alpaca_zh_demo.json").read_text())[:60]
    dump_jsonl("alpaca_zh.jsonl", zh)
    marco = json.loads((CORPUS / "marco-o1-cot-demo/CoT_demo.json").read_text())
    dump_jsonl("marco_cot.jsonl", [{"id": f"marco-{i}", **r} for i, r in enumerate(marco)])
    qs = [r for r in jsonl_rows(CORPUS / "arena-hard/question_v2.0.jsonl")][:40]
    dump_jsonl("arena_hard_v2.jsonl", qs)
    uids = {r["uid"] for r in qs}
    ans = [r for r in jsonl_rows(CORPUS / "arena-hard/model_answer_v2.0_o3-mini-2025-01-31.jsonl") if r["uid"] in uids]
    dump_jsonl("arena_hard_o3mini_answers.jsonl", ans)
    dump_jsonl("mbpp.jsonl", head_jsonl(CORPUS / "mbpp/mbpp.jsonl", 40))


if __name__ == "__main__" and "--sample" in sys.argv:
    sample()
