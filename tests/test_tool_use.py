"""Tool-use rows as TRL expects them: `tools` (function definitions) and structured
`tool_calls`, mapped from every source layout, gated at release, and rendered into the
training text by the real Qwen2.5 chat template."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from builder.config.sources import SourceConfig
from builder.errors import UserError
from builder.recipe import load_recipe
from builder.release.stage import run_release
from builder.rows import VARIANT_FEATURES, arrow_table, json_text
from builder.sources.mapping import RowProblem, map_row
from quality.derive import tools_kept
from tests.test_release_helpers import build_work, rewrite_variant, write_recipe

ROOT = Path(__file__).resolve().parents[1]
WEATHER = {"name": "get_weather", "description": "Weather of a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Bern"}}}


def _map(fields: dict[str, str], row: dict[str, Any]) -> dict[str, Any]:
    return map_row(SourceConfig(name="s", path="s.jsonl", fields=fields, category="tool_use"), row, None)


def _calls(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(c) for c in msg["tool_calls"] or []]


def test_openai_tool_calls_become_structured_calls() -> None:
    row = {"tools": [{"type": "function", "function": WEATHER}], "messages": [
        {"role": "user", "content": "Weather in Bern?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Bern"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "8°C"},
        {"role": "assistant", "content": "It is 8°C in Bern."},
    ]}
    rec = _map({"messages": "messages", "tools": "tools"}, row)
    call_turn = rec["messages"][1]
    assert call_turn["content"] == "" and _calls(call_turn) == [{**CALL, "id": "call_1"}]  # arguments: an object
    assert [m["tool_calls"] for m in rec["messages"] if m is not call_turn] == [None, None]
    assert rec["original_response"] == "It is 8°C in Bern." and rec["original_tool_calls"] is None
    assert json.loads(rec["tools_json"]) == [{"type": "function", "function": WEATHER}]


def test_llamafactory_tool_call_parts_and_sharegpt_function_calls() -> None:
    # A real sample row whose last assistant turn only calls tools (typed `tool_call` parts).
    rows = [json.loads(line) for line in (ROOT / "data/sample/tool_use.jsonl").open(encoding="utf-8")]
    row = next(r for r in rows if len(r["messages"]) == 3
               and any(p["type"] == "tool_call" for p in r["messages"][-1]["content"]))
    parts = [json.loads(p["value"]) for p in row["messages"][-1]["content"] if p["type"] == "tool_call"]
    rec = _map({"messages": "messages", "tools": "tools"}, row)
    assert rec["original_response"] == ""  # the reasoning part is not the reply's text
    assert [c["function"] for c in map(json.loads, rec["original_tool_calls"])] == parts
    # ShareGPT: a function_call turn's value is the call; the observation is a tool turn.
    sharegpt = {"conversations": [
        {"from": "human", "value": "Weather in Bern?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Bern"}})},
        {"from": "observation", "value": "8°C"},
        {"from": "gpt", "value": "8°C."},
    ], "tools": json.dumps([WEATHER])}
    rec = _map({"messages": "conversations", "tools": "tools"}, sharegpt)
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant", "tool"]
    assert rec["messages"][1]["content"] == "" and _calls(rec["messages"][1]) == [CALL]
    assert json.loads(rec["tools_json"]) == [{"type": "function", "function": WEATHER}]  # bare spec wrapped


def test_fields_tool_calls_give_the_original_turn_its_calls() -> None:
    # xLAM's layout: a query, tools and the answer's calls as JSON text.
    row = {"query": "Weather in Bern?", "tools": json.dumps([WEATHER]),
           "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Bern"}}])}
    rec = _map({"prompt": "query", "tools": "tools", "tool_calls": "answers"}, row)
    assert [json.loads(c) for c in rec["original_tool_calls"]] == [CALL]
    assert rec["original_response"] is None


@pytest.mark.parametrize(("fields", "row", "code", "detail"), [
    ({"messages": "m"}, {"m": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None,
                               "tool_calls": [{"function": {"name": "f", "arguments": "{not json"}}]}]},
     "bad_tool_call", "m[1].tool_calls[0].arguments is a string that is not JSON"),
    ({"messages": "m"}, {"m": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "",
                               "tool_calls": [{"function": {"arguments": {}}}]}]},
     "bad_tool_call", "has no function name"),
    ({"prompt": "q", "tool_calls": "a"}, {"q": "x", "a": [{"name": "f", "arguments": [1, 2]}]},
     "bad_tool_call", "arguments is a list, expected an object"),
    ({"prompt": "q", "tools": "t"}, {"q": "x", "t": "{broken"}, "bad_tools", "field `t` is a string that is not JSON"),
    ({"prompt": "q", "tools": "t"}, {"q": "x", "t": ["f"]}, "bad_tools", "must be a list of function definitions"),
    ({"prompt": "q", "tools": "t"}, {"q": "x", "t": [{"description": "no name"}]}, "bad_tools", "has no function name"),
])
def test_malformed_tools_and_calls_are_quarantined(fields: dict[str, str], row: dict[str, Any], code: str,
                                                   detail: str) -> None:
    with pytest.raises(RowProblem) as e:
        _map(fields, row)
    assert e.value.code == code and detail in e.value.detail


def _variant_rows(specs: list[tuple[str, list[dict[str, Any]], list[str] | None]]) -> Any:
    base = {k: None for k in VARIANT_FEATURES}
    rows = [{**base, "prompt_id": str(i), "category": cat, "messages": msgs, "tools": tools, "quality_codes": []}
            for i, (cat, msgs, tools) in enumerate(specs)]
    return arrow_table(rows, VARIANT_FEATURES)


def test_tools_kept_fails_rows_that_use_tools_without_definitions() -> None:
    ask = {"role": "user", "content": "Weather?", "tool_calls": None}
    call = {"role": "assistant", "content": "", "tool_calls": [json_text(CALL)]}
    result = {"role": "tool", "content": "8°C", "tool_calls": None}
    reply = {"role": "assistant", "content": "8°C.", "tool_calls": None}
    tools = [json_text({"type": "function", "function": WEATHER})]
    table = _variant_rows([
        ("tool_use", [ask, call, result, reply], tools),   # kept: calls and their definitions
        ("tool_use", [ask, call, result, reply], None),    # lost: calls, no definitions
        ("chat", [ask, call], None),                       # lost: an assistant turn that calls
        ("chat", [result, reply], []),                     # lost: a tool turn, an empty list
        ("tool_use", [ask, reply], None),                  # kept: definitions in the system text (Glaive)
        ("chat", [ask, reply], ['{"name": "f"}']),         # lost: not a function definition
        ("chat", [ask, reply], ["not json"]),              # lost: not JSON
        ("chat", [ask, reply], None),                      # kept: no tools at all
    ])
    assert tools_kept(table).to_pylist() == [True, False, False, False, True, False, False, True]


def test_release_blocks_a_tool_row_that_lost_its_tools(tmp_path: Path) -> None:
    work = build_work(tmp_path / "work", n_en=6, n_zh=0)

    def drop_tools(rows: list[dict[str, Any]]) -> None:
        # A tool round trip whose definitions were not carried: the student would learn to
        # call a tool it was never shown.
        rows[0]["messages"][-1:-1] = [
            {"role": "assistant", "content": "", "tool_calls": [json_text(CALL)]},
            {"role": "tool", "content": "8°C", "tool_calls": None},
        ]
        rows[0]["tools"] = None

    rewrite_variant(work, "answer", drop_tools)
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    with pytest.raises(UserError, match=r"answer: tools_kept .*1 of 6 rows"):
        run_release(recipe, work, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- the sample release, as `datasets` loads it and the trainer renders it ------------------
def _tool_rows(release: Path) -> list[dict[str, Any]]:
    import datasets

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    ds = datasets.load_dataset(str(release), "original", split="train", download_mode="force_redownload")
    return [r for r in ds if r["category"] == "tool_use"]


def test_sample_tool_rows_load_in_trls_tool_calling_format(sample_release: Path) -> None:
    rows = _tool_rows(sample_release)
    using = [r for r in rows if any(m["role"] == "tool" or m["tool_calls"] for m in r["messages"])]
    assert len(using) >= 20
    for r in using:
        assert r["tools"] and all(t["type"] == "function" and t["function"]["name"] for t in r["tools"])
        names = {t["function"]["name"] for t in r["tools"]}
        for m in r["messages"]:
            for c in m["tool_calls"] or []:  # decoded by `datasets`: dicts, arguments an object
                assert m["role"] == "assistant" and c["function"]["name"] in names
                assert isinstance(c["function"]["arguments"], dict)
    # Replies that only call tools are in `original` with their calls as the turn.
    assert sum(bool(r["messages"][-1]["tool_calls"]) for r in using) >= 5


def test_qwen25_training_text_contains_the_tool_schemas_and_calls(sample_release: Path, tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="the train extra is not installed")
    from transformers import AutoTokenizer

    from builder.tokens import hf_tokenizer_dir
    from train_reference import sft
    from train_reference.chat_template import render
    from train_reference.config import DatasetSection

    tok = AutoTokenizer.from_pretrained(hf_tokenizer_dir("qwen2.5"))
    ds = sft.load_release(DatasetSection(path=str(sample_release), config="original"), str(sample_release), None)
    # The default train_on (last_turn) splits each row into prompt / completion, tools beside them.
    rows = [{"messages": r["prompt"] + r["completion"], "tools": r["tools"]} for r in ds if r["tools"]]
    assert len(rows) >= 20
    original = tok.chat_template
    training = sft.training_chat_template(tok, original)
    # The training template renders these rows exactly as Qwen2.5's own template does.
    sft.check_training_template(tok, original, training, [r["messages"] for r in rows], [r["tools"] for r in rows])
    for r in rows:
        text = render(tok, r["messages"], r["tools"], training, tokenize=False)
        system = text[: text.index("<|im_end|>")]
        for t in r["tools"]:  # each definition, as the template's `tojson` writes it
            assert "\n" + json.dumps(t, ensure_ascii=False) in system
        for m in r["messages"]:
            for c in m["tool_calls"] or []:
                call = f'{{"name": "{c["function"]["name"]}", "arguments": {json.dumps(c["function"]["arguments"], ensure_ascii=False)}}}'
                assert f"<tool_call>\n{call}\n</tool_call>" in text
    # Without the row's tools (what sft.py did before) the schemas are absent.
    bare = render(tok, rows[0]["messages"], None, training, tokenize=False)
    assert "<tools>" not in bare


def test_the_same_question_offered_other_tools_is_not_a_duplicate(tmp_path: Path) -> None:
    from builder.curate.stage import run_curate
    from builder.workdir import WorkDir
    from tests.test_curate_inputs import real_questions
    from tests.test_curate_inputs import write_recipe as curate_recipe

    q = real_questions(1)[0]
    near = q.rsplit(" ", 1)[0] + " exactly?"  # one word changed: a near twin of q
    other = {**WEATHER, "name": "get_forecast"}
    reordered = dict(reversed(list(WEATHER.items())))  # the same definition, keys in another order
    rows = [("a", q, [WEATHER]), ("b", q, [other]), ("c", q, [reordered]), ("d", near, [WEATHER]), ("e", near, None)]
    src = tmp_path / "tools.jsonl"
    src.write_text("".join(json.dumps({"id": i, "q": text, **({"t": t} if t else {})}) + "\n" for i, text, t in rows))
    recipe = load_recipe(curate_recipe(tmp_path, [{"name": "s", "path": str(src), "category": "tool_use",
                                                   "fields": {"prompt": "q", "tools": "t", "id": "id"}}],
                                       curate={"decontaminate": {"enabled": False}}))  # fmt: skip
    run_curate(recipe, WorkDir(tmp_path / "w"))
    ledger = pq.read_table(tmp_path / "w/curate/ledger.parquet").to_pylist()
    dropped = {r["source_row_id"]: r["reason"] for r in ledger if r["status"] != "kept"}
    # c repeats a (key order aside); d is a near twin of a with the same tools; b and e differ in tools.
    assert dropped == {"c": "exact_dup", "d": "near_dup"}


def test_a_prompt_ending_in_a_tool_result_sends_the_result() -> None:
    from builder.teachers.prompting import Template, build_messages

    tpl = Template(id="t", version=1, system="SYS", suffix=" SUFFIX", hash="h")
    convo = [{"role": "user", "content": "Weather in Bern?"},
             {"role": "assistant", "content": "", "tool_calls": [json.dumps(CALL)]},
             {"role": "tool", "content": '{"temp_c": 21}'}]  # fmt: skip
    sent = build_messages(convo, tpl)
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[-1]["content"] == '{"temp_c": 21}' and sent[-1]["tool_call_id"] == sent[2]["tool_calls"][0]["id"]
    assert sent[1]["content"] == "Weather in Bern? SUFFIX"  # the suffix stays on the user's turn
    # A community answer after the result is cut, as after a user turn.
    assert build_messages([*convo, {"role": "assistant", "content": "It is 21 C."}], tpl) == sent
