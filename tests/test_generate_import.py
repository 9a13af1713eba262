"""The import backend: existing reasoning outputs matched to curated prompts, nothing lost.

The sample test runs the real curate stage on the shipped sample files and the sample
recipe's own `generate:` section; layout tests use small files in the real dataset shapes
(AM-DeepSeek-R1-Distilled, OpenR1, OpenThoughts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from builder.curate.stage import run_curate
from builder.errors import UserError
from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.generate_helpers import REPO, import_run, write_prompts, write_recipe

SAMPLE_SOURCES = ("r1-mmlupro-pcmb", "r1-bangla-mmlu", "marco-o1-cot", "arena-hard-v2")


def _replies(work: Path) -> list[dict[str, Any]]:
    return [r for f in sorted((work / "generate" / "replies").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def _sample_recipe(tmp: Path) -> Path:
    """recipes/sample.yaml cut to the four sources with replies, curation steps off (fast)."""
    data = yaml.safe_load((REPO / "recipes" / "sample.yaml").read_text())
    data["sources"] = [s for s in data["sources"] if s["name"] in SAMPLE_SOURCES]
    for s in data["sources"]:
        s["path"] = str((REPO / "recipes" / s["path"]).resolve())
    for t in data["generate"]["teachers"]:
        for imp in t["imports"]:
            if "path" in imp:
                imp["path"] = str((REPO / "recipes" / imp["path"]).resolve())
    data["generate"]["prompts_dir"] = str(REPO / "recipes" / "prompts")
    data["curate"] = {"near_dedupe": {"enabled": False}, "decontaminate": {"enabled": False}, "balance": {"enabled": False}}
    data["executor"] = {"kind": "local", "tasks": 1, "workers": 1}
    for k in ("variants", "responses", "quality", "release"):
        data.pop(k, None)
    path = tmp / "sample.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def test_sample_recipe_imports_every_reply(tmp_path: Path) -> None:
    recipe = load_recipe(_sample_recipe(tmp_path))
    work = WorkDir(tmp_path / "w")
    cur = run_curate(recipe, work)
    res = run_generate(recipe, work)
    rows = _replies(work.root)
    n = cur.rows_out
    assert len(rows) == 2 * n  # one row per prompt per teacher, failures included
    r1 = [r for r in rows if r["teacher_role"] == "reasoning"]
    control = [r for r in rows if r["teacher_role"] == "control"]
    ok = [r for r in r1 if r["status"] == "ok"]
    arena = cur.by_source["arena-hard-v2"]
    assert len(ok) == n - arena  # every reasoning-source prompt found its trace
    assert {r["error_code"] for r in r1 if r["status"] != "ok"} == {"not_in_import"}
    assert sum(r["status"] == "ok" for r in control) == arena
    by_model = {r["served_model"] for r in ok}
    assert by_model == {"deepseek-reasoner", "deepseek-ai/DeepSeek-R1", "AIDC-AI/Marco-o1"}
    for r in ok:
        assert r["endpoint_kind"] == "import" and r["content"]
        if r["served_model"] == "AIDC-AI/Marco-o1":  # raw text, delimiters named
            assert r["reasoning_format"] == "marco" and "<Thought>" in r["content"] and r["reasoning_content"] is None
        else:  # separate fields; the Bangla <think> wrapper is unwrapped, the inside untouched
            assert r["reasoning_content"] and not r["reasoning_content"].startswith("<think>")
    c = next(r for r in control if r["status"] == "ok")
    assert c["served_model"] == "o3-mini-2025-01-31" and c["reasoning_content"] is None
    ledger = pq.read_table(work.root / "generate" / "ledger.parquet").to_pylist()
    assert len(ledger) == 2 * n
    assert {r["reason"] for r in ledger if r["status"] == "dropped"} == {"not_in_import"}
    summary = json.loads((work.root / "generate" / "summary.json").read_text())
    assert [t["name"] for t in summary["teachers"]] == ["r1", "control"]
    assert res.teachers[0].ok == n - arena
    # Idempotent: a re-run stores nothing new and exports the same rows.
    run_generate(recipe, work)
    assert sorted(r["generation_id"] for r in _replies(work.root)) == sorted(r["generation_id"] for r in rows)
    segs = list((work.root / "generate" / "store" / "r1").glob("*.jsonl"))
    assert len(segs) == 1  # the second run wrote no segment


def test_bangla_trace_matches_its_prompt(tmp_path: Path) -> None:
    recipe = load_recipe(_sample_recipe(tmp_path))
    work = WorkDir(tmp_path / "w")
    run_curate(recipe, work)
    run_generate(recipe, work)
    prompts = pq.read_table(sorted((work.root / "curate" / "prompts").glob("*.parquet"))).to_pylist()
    src = json.loads((REPO / "data" / "sample" / "bangla_r1.jsonl").read_text().splitlines()[0])
    pid = next(p["prompt_id"] for p in prompts if p["source_row_id"] == src["id"])
    reply = next(r for r in _replies(work.root) if r["prompt_id"] == pid and r["teacher_role"] == "reasoning")
    assert reply["content"] == src["gen_ans"]
    assert reply["reasoning_content"] == src["reason"].strip().removeprefix("<think>").removesuffix("</think>").strip()


def test_am_layout(tmp_path: Path) -> None:
    rows = [
        {"id": "a1", "problem": "What is 1+1?", "messages": [
            {"role": "user", "content": "What is 1+1?", "info": {"source": "x"}},
            {"role": "assistant", "content": "<think>\nadd\n</think>\n<answer>\n2\n</answer>",
             "info": {"think_content": "add", "answer_content": "2", "source": "x"}}]},
        {"id": "a2", "problem": "What is 2+2?", "messages": [
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "<think>sum</think><answer>4</answer>"}]},
        {"id": "a3", "problem": "What is 3+3?", "messages": [{"role": "user", "content": "What is 3+3?"}]},
    ]  # fmt: skip
    got = {r["content"]: r for r in import_run(tmp_path, rows, {"layout": "am"})}
    assert got["2"]["reasoning_content"] == "add" and got["2"]["reasoning_format"] is None
    raw = got["<think>sum</think><answer>4</answer>"]
    assert raw["reasoning_format"] == "r1" and raw["reasoning_content"] is None
    bad = got[None]
    assert bad["status"] == "failed" and bad["error_code"] == "bad_import" and "data.jsonl:3" in bad["error_message"]


def test_openr1_generations_are_samples(tmp_path: Path) -> None:
    rows = [{"id": "o1", "problem": "Find x.", "generations": ["<think>a</think>x=1", "<think>b</think>x=2"]},
            {"id": "o2", "problem": "Find y.", "generations": ["<think>c</think>y=3"]}]  # fmt: skip
    out = import_run(tmp_path, rows, {"layout": "openr1"}, samples=2)
    got = {(r["content"], r["sample_index"]) for r in out if r["status"] == "ok"}
    assert got == {("<think>a</think>x=1", 0), ("<think>b</think>x=2", 1), ("<think>c</think>y=3", 0)}
    missing = [r for r in out if r["status"] != "ok"]
    assert len(missing) == 1 and missing[0]["error_code"] == "not_in_import" and missing[0]["sample_index"] == 1


def test_openthoughts_layout(tmp_path: Path) -> None:
    value = "<|begin_of_thought|>\nthink\n<|end_of_thought|>\n\n<|begin_of_solution|>\n42\n<|end_of_solution|>"
    rows = [{"id": "t1", "problem": "Answer?", "conversations": [{"from": "user", "value": "Answer?"},
                                                                 {"from": "assistant", "value": value}]}]  # fmt: skip
    (r,) = import_run(tmp_path, rows, {"layout": "openthoughts"})
    assert r["content"] == value and r["reasoning_format"] == "skythought"


def test_import_naming_an_unknown_source(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": 1, "problem": "p", "a": "x"}\n')
    src = {"name": "src", "path": str(data), "fields": {"prompt": "problem", "id": "id"}}
    teacher = {"name": "r1", "kind": "import", "model": "m", "imports": [{"source": "nope", "answer": "a"}]}
    # Found when the recipe loads, before curate reads anything.
    with pytest.raises(UserError, match=r"generate.teachers\[0=r1\].imports\[0\].source: unknown source 'nope'"):
        load_recipe(write_recipe(tmp_path, {"teachers": [teacher]}, sources=[src]))


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        ({"name": "t", "kind": "openai", "model": "m"}, "needs `endpoints`"),
        ({"name": "t", "kind": "import", "model": "m"}, "needs `imports`"),
        ({"name": "t", "kind": "import", "model": "m", "imports": [{"source": "s"}]}, "needs `answer`"),
        ({"name": "t", "kind": "openai", "model": "m", "endpoints": [{"base_url": "u", "api_key_env": "sk-abc 123"}]},
         "NAME of an environment variable"),
        ({"name": "t", "kind": "import", "model": "m", "imports": [{"source": "s", "content": "c", "reasoning_format": "zz"}]},
         "unknown reasoning_format"),
        ({"name": "t", "kind": "openai", "model": "m", "endpoints": [{"base_url": "u"}], "temperature": 1}, "unknown key"),
    ],
)  # fmt: skip
def test_recipe_errors_are_one_line(tmp_path: Path, teacher: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message) as e:
        load_recipe(write_recipe(tmp_path, {"teachers": [teacher]}))
    assert "\n" not in str(e.value) and "generate.teachers" in str(e.value)


def _separate_file_import(tmp: Path, lines: list[bytes], id_field: str = "rid") -> tuple[list[dict[str, Any]], list[str]]:
    """Three curated prompts (ids 0, 1, 2) and their replies from a separate JSONL file of `lines`."""
    write_prompts(tmp / "w", [{"text": f"question {i}?", "id": i} for i in range(3)])
    (tmp / "replies.jsonl").write_bytes(b"".join(lines))
    teacher = {"name": "r1", "kind": "import", "model": "m",
               "imports": [{"source": "demo", "path": str(tmp / "replies.jsonl"), "id_field": id_field, "answer": "a"}]}
    res = run_generate(load_recipe(write_recipe(tmp, {"teachers": [teacher]})), WorkDir(tmp / "w"))
    return _replies(tmp / "w"), res.warnings


def test_unreadable_import_rows_are_reported_not_skipped(tmp_path: Path) -> None:
    """A broken line, a row without its id and a cut last line answer no prompt: one warning
    names how many and the first, instead of the prompts showing as an expected not_in_import."""
    lines = [b'{"rid": 0, "a": "zero"}\n', b'{"rid": 1, "a": "on\n', b'[1, 2]\n', b'{"a": "no id"}\n',
             b'{"rid": 2, "a": "tw']  # fmt: skip
    replies, warnings = _separate_file_import(tmp_path, lines)
    assert sorted(str((r["content"], r["status"], r["error_code"])) for r in replies) == [
        "('zero', 'ok', None)", "(None, 'failed', 'not_in_import')", "(None, 'failed', 'not_in_import')"]
    (line,) = [w for w in warnings if "skipped" in w]
    assert f"4 row(s) of {tmp_path / 'replies.jsonl'} skipped" in line, line
    assert f"(first: {tmp_path / 'replies.jsonl'}:2: bad_json)" in line, line


def test_import_id_field_in_no_row_is_one_line(tmp_path: Path) -> None:
    """`id_field` that no row has (a typo) stops generate before storing: every prompt would
    otherwise be stored as not_in_import, which the summary calls expected."""
    with pytest.raises(UserError, match=r"imports\[0\].id_field: 'uid' is in none of the first 2 rows of "
                                        r".*replies.jsonl; point `id_field`"):
        _separate_file_import(tmp_path, [b'{"rid": 0, "a": "zero"}\n', b'{"rid": 1, "a": "one"}\n'], id_field="uid")


def test_an_id_on_several_prompts_never_pairs_a_prompt_with_another_ones_reply(tmp_path: Path) -> None:
    """Three rows sharing `id: 7` (fields.id not unique): every prompt got the first row's reply,
    stored ok ("What is 1 plus 1?" -> "The answer is 0."). Imported from the source's own rows, the
    id only finds the candidates and the row's text decides: each prompt gets its own row's reply."""
    rows = [{"id": 7, "problem": f"What is {i} plus {i}?", "a": f"The answer is {2 * i}."} for i in range(3)]
    out = import_run(tmp_path, rows, {"answer": "a"})
    assert sorted((r["status"], r["content"]) for r in out) == [("ok", f"The answer is {2 * i}.") for i in range(3)]


def test_an_id_field_holding_other_ids_is_warned_about(tmp_path: Path) -> None:
    """`id_field: ans_id` where `uid` was meant: the field exists, no value is a prompt's id, and
    every prompt was stored as not_in_import, which the summary calls expected, without a word."""
    lines = [f'{{"rid": {i}, "ans_id": "A{i}", "a": "x"}}\n'.encode() for i in range(3)]
    replies, warnings = _separate_file_import(tmp_path, lines, id_field="ans_id")
    assert {r["error_code"] for r in replies} == {"not_in_import"}
    assert (f"teacher r1: import of demo: none of the 3 ids in {tmp_path / 'replies.jsonl'} is a prompt's id "
            "(e.g. 'A0' vs the source's '0'); check id_field") in " ".join(warnings), warnings
