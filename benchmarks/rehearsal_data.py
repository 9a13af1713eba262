"""The rehearsal's inputs: N prompts made from real ones, and N real-shaped teacher replies.

Everything is written under a folder the caller owns (a temp dir); nothing here is committed.

Prompts (one JSONL source per category, roughly the paper's mix: chat 41%, math 22%, tool use
12%, multi-turn 9%, code 9%, instruction following 7%) come from real prompts in
../shared/corpus, made unique by meaning-preserving variation:
- chat / math / instruction following: two real requests of one language asked together
  ("1. A / 2. B"), pair (i, j) never repeated; their real responses, when the set has them,
  become the `original` response the same way;
- MCQ (inside the chat share) and code: the real question numbered ("Question 17 of the
  set"), so the reference (answer letter, MBPP tests) still holds; near dedupe keeps prompts
  whose numbers differ;
- tool use / multi-turn: the real conversation with a distinct real request appended to its
  last user turn.
Then a seeded share of work for curate: exact duplicates (case / whitespace), near duplicates
(one word gone), benchmark leaks (a data/benchmarks item embedded in an instruction).

Replies (a file per source, matched by id; AM-DeepSeek-R1-Distilled's layout, the paper's
largest import): real DeepSeek-R1 traces (Bangla-MMLU inline `<think>`, MMLU-Pro
reasoning_content) in these shapes, seeded per row: separate think / answer fields (AM's
`info`, what vLLM's reasoning parser and the DeepSeek API return), inline tags with and
without `<answer>`, the opening `<think>` missing (R1's template prefills it), and damaged:
cut in the thinking (`finish_reason: length`), no tags at all, an empty answer, no content.
An MCQ row gets its own question's trace (so verification means something); a code row gets a
trace's thinking and the MBPP reference code as its answer (so the sandbox runs real tests).
Chat rows also get a control reply (o3-mini's real Arena-Hard answers, answer only).
"""

from __future__ import annotations

import ast
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.corpus when run as a script
from tests.corpus import corpus_dir  # noqa: E402

CORPUS = corpus_dir()
BENCH = ROOT / "data" / "benchmarks"

# The paper's mix (Figure 2); MCQ rows with their own R1 traces take part of the chat share.
SHARES = {"chat": 0.372, "mcq": 0.04, "math": 0.219, "tool_use": 0.116, "multi_turn": 0.093,
          "code": 0.090, "instruction_following": 0.069}  # fmt: skip
EXACT_DUP, NEAR_DUP, LEAK = 0.02, 0.02, 0.005
# Reply shapes, seeded per row (the damaged ones last).
SHAPES = {"split": 0.40, "inline_answer_tags": 0.35, "no_open_think": 0.10, "no_answer_tags": 0.07,
          "truncated": 0.03, "no_tags": 0.02, "empty_answer": 0.02, "null_content": 0.01}  # fmt: skip
CONSTRAINTS = [  # our own wording: instruction-following constraints on a real request
    "Answer in at most {n} words.", "Use exactly {k} bullet points.", "Do not use any commas.",
    "Write your whole answer in lowercase letters.", "End your answer with the phrase 'Is there anything else?'",
    "Wrap your entire answer in double quotation marks.", "Include a title wrapped in double angular brackets.",
    "Give {k} numbered sections, each starting with 'Section X'.", "Respond in JSON.",
]  # fmt: skip
_WORD = re.compile(r"\S+")
_BENGALI = re.compile("[\u0980-\u09ff]")
ZH_SHARE = 0.1  # of chat / math / instruction-following rows (the paper's mix was Chinese and English)


def _jl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _js(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Pools:
    """Real prompts per category and real R1 traces, read once."""

    chat: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)  # lang → (prompt, response)
    math: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    mcq: list[dict] = field(default_factory=list)  # prompt, answer, cat, think, reply
    code: list[dict] = field(default_factory=list)  # prompt, code, tests
    tools: list[dict] = field(default_factory=list)  # messages, tools
    chats: list[dict] = field(default_factory=list)  # messages, response
    traces: list[tuple[str, str]] = field(default_factory=list)  # (think, answer)
    control: dict[str, list[str]] = field(default_factory=dict)  # lang → answers
    leaks: list[tuple[str, str]] = field(default_factory=list)  # (category, benchmark text)


def _strip_think(t: str) -> str:
    t = t.strip()
    t = t.removeprefix("<think>").removesuffix("</think>")
    return t.strip()


def _script_lang(text: str) -> str | None:
    """'zh' or 'en' by script (o3-mini answered Arena-Hard v2 in many languages), else None."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    cjk = sum(1 for c in letters if "\u4e00" <= c <= "\u9fff") / len(letters)
    if cjk > 0.3:
        return "zh"
    return "en" if sum(1 for c in letters if c.isascii()) / len(letters) > 0.98 else None


def load_pools(corpus: Path = CORPUS) -> Pools:
    if not corpus.is_dir():
        raise FileNotFoundError(f"{corpus} is missing: the rehearsal builds its prompts from ../shared/corpus")
    p = Pools()
    lf = corpus / "llamafactory-demo-data"
    for lang, name in (("en", "alpaca_en_demo.json"), ("zh", "alpaca_zh_demo.json")):
        rows = _js(lf / name)
        p.chat.setdefault(lang, []).extend(
            ("\n".join(x for x in (r["instruction"], r["input"]) if x), r["output"] or None) for r in rows
        )
    p.chat["zh"] += [(r["question"], r.get("std_answer") or None) for r in _jl(corpus / "belle-eval-zh/eval_set.jsonl")]
    p.chat["en"] += [(r["prompt"], None) for r in _jl(corpus / "arena-hard/question_v0.1.jsonl")]
    p.math["en"] = [(r["question"], r["answer"]) for r in _jl(corpus / "gsm8k/train.jsonl")]
    p.math["zh"] = [(r["question"], r["answer"]) for r in _jl(corpus / "qwen25math-eval-zh/cmath.jsonl")]
    for r in _jl(corpus / "r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl"):
        p.mcq.append({"prompt": r["formated_question"], "answer": r["answer"], "cat": "chat",
                      "think": _strip_think(r["reason"]), "reply": r["gen_ans"]})  # fmt: skip
    for r in _jl(corpus / "r1-mmlupro-pcmb-traces/pcmb_traces.jsonl"):
        opts = r["options"]
        opts = ast.literal_eval(opts) if isinstance(opts, str) and opts.startswith("[") else opts
        lines = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(opts)) if isinstance(opts, list) else opts
        p.mcq.append({"prompt": f"{r['question']}\n\n{lines}\n\nAnswer with the letter of the correct option.",
                      "answer": r["answer_letter"], "cat": "math" if r["subject"] == "math" else "chat",
                      "think": r["reasoning"], "reply": r["answer_text"]})  # fmt: skip
    # Other prompts get traces free of Bengali script (an English answer to an English request);
    # the corpus has no Chinese R1 traces, so Chinese prompts' replies fail the language check.
    p.traces = [(m["think"], m["reply"]) for m in p.mcq
                if m["think"].strip() and m["reply"].strip() and not _BENGALI.search(m["think"] + m["reply"])]  # fmt: skip
    for r in _jl(corpus / "mbpp/mbpp.jsonl"):
        p.code.append({"prompt": r["text"], "code": r["code"], "tests": r["test_list"]})
    for r in _js(lf / "glaive_toolcall_zh_demo.json"):
        first = next((t["value"] for t in r["conversations"] if t["from"] == "human"), None)
        if first:
            p.tools.append({"messages": [{"role": "user", "content": first}], "tools": r["tools"]})
    for r in _jl(lf / "reason_tool_use_demo_50.jsonl"):
        msgs = [{"role": m["role"], "content": " ".join(c["value"] for c in m["content"] if c["type"] == "text")}
                for m in r["messages"] if m["role"] in ("system", "user")][:2]  # fmt: skip
        if any(m["role"] == "user" for m in msgs):
            p.tools.append({"messages": msgs, "tools": r["tools"]})
    for r in _js(corpus / "mt-bench/dummy_conversation.json"):
        turns = [{"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]}
                 for t in r["conversations"]]  # fmt: skip
        while turns and turns[-1]["role"] == "assistant":
            last = turns.pop()
        if len(turns) >= 3:
            p.chats.append({"messages": turns, "response": last["content"]})
    for pools in (p.chat, p.math):
        for lang in pools:
            pools[lang].sort(key=lambda t: len(t[0]))
    for r in _jl(corpus / "arena-hard/model_answer_v2.0_o3-mini-2025-01-31.jsonl"):
        ans = r["messages"][-1]["content"]
        ans = ans.get("answer") if isinstance(ans, dict) else ans
        if isinstance(ans, str) and ans.strip() and (lang := _script_lang(ans)):
            p.control.setdefault(lang, []).append(ans)
    leak_files = (("math", "gsm8k_test.jsonl", "question"), ("math", "math500.jsonl", "problem"),
                  ("chat", "mmlu_test.jsonl", "question"), ("chat", "humaneval.jsonl", "prompt"),
                  ("instruction_following", "ifeval.jsonl", "prompt"), ("chat", "mt_bench.jsonl", "turns"))  # fmt: skip
    for cat, name, key in leak_files:
        for r in _jl(BENCH / name):
            text = r[key][0] if isinstance(r[key], list) else r[key]
            p.leaks.append((cat, text))
    return p


def _pair(pool: list[tuple[str, str | None]], k: int) -> tuple[str, str | None]:
    """Pair number k of a length-sorted pool: (i, i + step), each pair once for k < n·(n-1).
    Small steps first: the two halves have about the same length, so two rows that share one
    half share about a third of their shingles (near dedupe merges at half)."""
    n = len(pool)
    i, step = k % n, 1 + (k // n) % (n - 1)
    (a, ra), (b, rb) = pool[i], pool[(i + step) % n]
    text = f"Please answer both requests.\n\n1. {a}\n\n2. {b}"
    resp = f"1. {ra}\n\n2. {rb}" if ra and rb else None
    return text, resp


def _base_row(cat: str, k: int, rng: random.Random, p: Pools) -> dict[str, Any]:
    """The k-th unique row of a category."""
    if cat in ("chat", "math", "instruction_following"):
        lang = "zh" if rng.random() < ZH_SHARE else "en"
        pool = (p.math if cat == "math" else p.chat)[lang]
        # instruction following pairs from the far half of the step range: never a chat row's pair
        text, resp = _pair(pool, k + (len(pool) * (len(pool) // 2) if cat == "instruction_following" else 0))
        if cat == "instruction_following":
            c = rng.choice(CONSTRAINTS).format(n=rng.randint(40, 300), k=rng.randint(2, 6))
            text, resp = f"{text}\n\n{c}", None
        return {"prompt": text, "response": resp, "lang": lang}
    if cat == "mcq":
        m = p.mcq[k % len(p.mcq)]
        return {"prompt": f"Question {k + 1} of the set.\n{m['prompt']}", "answer": m["answer"], "cat": m["cat"],
                "trace": (m["think"], m["reply"])}  # fmt: skip
    if cat == "code":
        c = p.code[k % len(p.code)]
        return {"prompt": f"Task {k + 1}: {c['prompt']}", "response": c["code"], "tests": c["tests"],
                "answer_code": c["code"]}  # fmt: skip
    # A conversation repeats, so its rows are numbered and carry a distinct real request.
    other = p.chat["en"][(k * 7919) % len(p.chat["en"])][0]
    base = p.tools[k % len(p.tools)] if cat == "tool_use" else p.chats[k % len(p.chats)]
    msgs = [dict(m) for m in base["messages"]]
    msgs[-1]["content"] += f"\n\nAlso, separately (request {k + 1}): {other}"
    if cat == "tool_use":
        return {"messages": msgs, "tools": base["tools"]}
    return {"messages": msgs, "response": base["response"]}


def _text_of(row: dict[str, Any]) -> str:
    return row["prompt"] if "prompt" in row else row["messages"][-1]["content"]


def _with_text(row: dict[str, Any], text: str) -> dict[str, Any]:
    out = {k: (list(map(dict, v)) if k == "messages" else v) for k, v in row.items()}
    if "prompt" in out:
        out["prompt"] = text
    else:
        out["messages"][-1]["content"] = text
    return out


def _exact_dup(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    t = _text_of(row)
    return _with_text(row, t.upper() if rng.random() < 0.5 else "  " + t.replace(" ", "  ") + "\n")


def _near_dup(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One word without digits removed (numbers must match for near dedupe to merge)."""
    t = _text_of(row)
    words = [m for m in _WORD.finditer(t) if not any(ch.isdigit() for ch in m.group())]
    if len(words) < 20:
        return _exact_dup(row, rng)
    m = rng.choice(words[len(words) // 2 :])
    return _with_text(row, t[: m.start()] + t[m.end() :].lstrip(" "))


def reply(row: dict[str, Any], rng: random.Random, p: Pools) -> tuple[dict[str, Any], str]:
    """The stored-reply record for a row (AM layout) and its shape name."""
    think, answer = row.get("trace") or rng.choice(p.traces)
    if "answer_code" in row:
        answer = f"Here is the function.\n\n```python\n{row['answer_code']}\n```"
    shape = rng.choices(list(SHAPES), weights=list(SHAPES.values()))[0]
    finish: str | None = "stop" if rng.random() < 0.8 else None  # AM data carries none
    info: dict[str, str] | None = None
    if shape == "split":
        content, info = f"<think>\n{think}\n</think>\n\n<answer>\n{answer}\n</answer>", {
            "think_content": think, "answer_content": answer}  # fmt: skip
    elif shape == "inline_answer_tags":
        content = f"<think>\n{think}\n</think>\n\n<answer>\n{answer}\n</answer>"
    elif shape == "no_open_think":
        content = f"{think}\n</think>\n\n{answer}"
    elif shape == "no_answer_tags":
        content = f"<think>\n{think}\n</think>\n\n{answer}"
    elif shape == "truncated":
        content, finish = f"<think>\n{think[: max(1, int(len(think) * rng.uniform(0.3, 0.9)))]}", "length"
    elif shape == "no_tags":
        content = f"{think}\n\n{answer}"
    elif shape == "empty_answer":
        content = f"<think>\n{think}\n</think>\n\n<answer>\n\n</answer>"
    else:
        content, finish = None, "length"
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if info:
        msg["info"] = info
    return {"messages": [msg], "finish_reason": finish}, shape


@dataclass
class Generated:
    """What was written: per-source files and counts of every planted kind and reply shape."""

    sources: dict[str, tuple[Path, Path]]  # source → (prompts file, replies file)
    rows: int
    kinds: Counter = field(default_factory=Counter)
    shapes: Counter = field(default_factory=Counter)


def _plan(n: int) -> dict[str, int]:
    base = n - int(n * EXACT_DUP) - int(n * NEAR_DUP) - int(n * LEAK)
    counts = {c: int(base * s) for c, s in SHARES.items()}
    counts["chat"] += base - sum(counts.values())
    return counts


def _rows(n: int, seed: int, p: Pools) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(source, row, kind) in a seeded interleaved order; duplicates follow their original."""
    rng = random.Random(seed)
    plan = _plan(n)
    order = [c for c, k in plan.items() for _ in range(k)]
    rng.shuffle(order)
    made = Counter()
    recent: dict[str, list[dict[str, Any]]] = {}
    n_dup = int(n * EXACT_DUP) + int(n * NEAR_DUP)
    dup_at = set(rng.sample(range(len(order)), k=min(n_dup, len(order))))
    exact_left = int(n * EXACT_DUP)
    leak_at = set(rng.sample(range(len(order)), k=min(int(n * LEAK), len(order))))
    for pos, cat in enumerate(order):
        row = _base_row(cat, made[cat], rng, p)
        made[cat] += 1
        yield cat, row, "base"
        window = recent.setdefault(cat, [])
        window.append(row)
        if len(window) > 512:
            del window[: len(window) - 256]
        if pos in dup_at:
            orig = rng.choice(window)
            if exact_left > 0:
                exact_left -= 1
                yield cat, _exact_dup(orig, rng), "exact_dup"
            else:
                yield cat, _near_dup(orig, rng), "near_dup"
        if pos in leak_at:
            lcat, item = rng.choice(p.leaks)
            text = f"I found this in my notes and need a careful answer:\n\n{item}"
            yield lcat, {"prompt": text, "lang": "en"}, "leak"


def write_inputs(n: int, folder: Path, seed: int = 0, corpus: Path = CORPUS) -> Generated:
    """Write about n prompt rows (one file per source) and one reply record per row."""
    p = load_pools(corpus)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, Path]] = {c: (folder / f"{c}.jsonl", folder / f"{c}.replies.jsonl") for c in SHARES}
    handles = {c: (a.open("w", encoding="utf-8"), b.open("w", encoding="utf-8")) for c, (a, b) in files.items()}
    rng = random.Random(seed + 1)
    gen = Generated(files, 0)
    try:
        for cat, row, kind in _rows(n, seed, p):
            rid = f"{cat[:4]}-{gen.rows:08d}"
            rec, shape = reply(row, rng, p)
            rec["id"] = rid
            if cat == "chat":
                answers = p.control[row.get("lang", "en")]  # a control reply in the prompt's language
                rec["control"] = answers[gen.rows % len(answers)]
            row = {k: v for k, v in row.items() if k not in ("trace", "answer_code")}
            row["id"] = rid
            fp, fr = handles[cat]
            fp.write(json.dumps(row, ensure_ascii=False) + "\n")
            fr.write(json.dumps(rec, ensure_ascii=False) + "\n")
            gen.rows += 1
            gen.kinds[kind] += 1
            gen.shapes[shape] += 1
    finally:
        for a, b in handles.values():
            a.close()
            b.close()
    return gen
