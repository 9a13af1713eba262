"""Curation on bad input: one clear line for whole-source problems, a quarantine entry per bad row."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from builder.curate.stage import run_curate
from builder.errors import UserError
from builder.recipe import load_recipe
from builder.workdir import WorkDir

GSM8K = Path(__file__).resolve().parents[1] / "data/sample/gsm8k_train.jsonl"


def real_questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[:n]]
    return [r["question"] for r in rows]


def write_recipe(tmp: Path, sources: list[dict], **extra: object) -> Path:
    data = {
        "name": "t",
        "version": "0.0.1",
        "sources": sources,
        "curate": {"near_dedupe": {"enabled": False}, "decontaminate": {"enabled": False}},
        **extra,
    }
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def ledger(work: Path) -> list[dict]:
    return pq.read_table(work / "curate/ledger.parquet").to_pylist()


def test_bad_rows_are_quarantined_with_location(tmp_path: Path) -> None:
    qs = real_questions(4)
    lines = [
        json.dumps({"q": qs[0]}).encode(),
        b'{"q": "unterminated',  # malformed JSON
        json.dumps({"q": 42}).encode(),  # wrong type
        json.dumps({"other": qs[1]}).encode(),  # missing mapped field
        json.dumps({"q": "   \u200b  "}).encode(),  # empty after normalization
        b'{"q": "caf\xe9"}',  # not UTF-8
        json.dumps({"q": "x" * 10_000_001}).encode(),  # a 10 MB prompt
        json.dumps([1, 2]).encode(),  # not an object
        json.dumps({"q": qs[2]}).encode(),
    ]
    src = tmp_path / "s.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    recipe = load_recipe(write_recipe(tmp_path, [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q"}}]))
    res = run_curate(recipe, WorkDir(tmp_path / "w"))
    assert res.rows_in == 9 and res.rows_out == 2
    quarantined = {r["location"].rsplit(":", 1)[1]: r["reason"] for r in ledger(tmp_path / "w") if r["status"] == "quarantined"}
    assert quarantined == {
        "2": "bad_json", "3": "wrong_type", "4": "missing_field", "5": "empty_prompt",
        "6": "bad_utf8", "7": "too_long", "8": "not_an_object",
    }


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown key"),
        (lambda d: d["sources"][0].update(pth="x"), "sources[0=s].pth: unknown key"),
        (lambda d: d.update(version="1.0"), "version: version '1.0' is not semver"),
        (lambda d: d.pop("sources"), "sources: required key is missing"),
        (lambda d: d["sources"][0].update(category="poetry"), "category 'poetry' is unknown"),
        (lambda d: d["curate"].update(balance={"category_weights": {"maths": 1}}), "unknown category 'maths'"),
    ],
)
def test_recipe_errors_name_file_and_key(tmp_path: Path, mutate, expect: str) -> None:
    path = write_recipe(tmp_path, [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q"}}])
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError) as e:
        load_recipe(path)
    msg = str(e.value)
    assert str(path) in msg and expect in msg and "\n" not in msg


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(tmp_path, [{"name": "s", "path": "nope.jsonl", "fields": {"prompt": "q"}}]))
    with pytest.raises(UserError, match=r"source s: file not found: .*nope.jsonl; check `path`"):
        run_curate(recipe, WorkDir(tmp_path / "w"))
    (tmp_path / "empty.jsonl").write_bytes(b"")
    recipe = load_recipe(write_recipe(tmp_path, [{"name": "s", "path": "empty.jsonl", "fields": {"prompt": "q"}}]))
    with pytest.raises(UserError, match="0 rows"):
        run_curate(recipe, WorkDir(tmp_path / "w"))


def test_unreachable_hub_id_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    recipe = load_recipe(write_recipe(tmp_path, [{"name": "hub", "kind": "hf", "dataset": "no-such-org/no-such-set",
                                                  "fields": {"prompt": "q"}}]))
    with pytest.raises(UserError) as e:
        run_curate(recipe, WorkDir(tmp_path / "w"))
    assert "source hub: cannot load Hub dataset 'no-such-org/no-such-set'" in str(e.value)
    assert "\n" not in str(e.value)


def test_hf_code_path_on_local_data(tmp_path: Path) -> None:
    """kind=hf goes through datasets.load_dataset; a local parquet folder takes the same path."""
    import datasets

    qs = real_questions(6)
    folder = tmp_path / "hubcopy"
    datasets.Dataset.from_dict({"q": qs, "a": [f"answer {i}" for i in range(6)]}).to_parquet(str(folder / "train.parquet"))
    recipe = load_recipe(write_recipe(tmp_path, [{"name": "hub", "kind": "hf", "dataset": str(folder), "split": "train",
                                                  "fields": {"prompt": "q", "response": "a"}}]))
    res = run_curate(recipe, WorkDir(tmp_path / "w"))
    rows = pq.read_table(tmp_path / "w/curate/prompts").to_pylist()
    assert res.rows_out == 6
    assert sorted(r["messages"][0]["content"] for r in rows) == sorted(q.strip() for q in qs)
    assert {r["original_response"] for r in rows} == {f"answer {i}" for i in range(6)}


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write_recipe(tmp_path, [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q"}}], colour="red")
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "curate", str(path), "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "colour: unknown key" in proc.stderr


def test_tests_format_wraps_native_layouts_and_rejects_bad_ones() -> None:
    from builder.config.sources import SourceConfig
    from builder.responses.verify.codecheck import parse_tests
    from builder.sources.mapping import RowProblem, map_row

    def tests_of(fmt: str, row: dict) -> str | None:
        src = SourceConfig(name="s", path="s.jsonl", fields={"prompt": "q", "tests": "t"}, tests_format=fmt)
        return map_row(src, {"q": "Write f.", **row}, None)["tests_json"]

    mbpp = tests_of("mbpp", {"t": ["assert f(1) == 2"], "test_setup_code": "import math"})
    assert parse_tests(mbpp) == {"format": "asserts", "asserts": ["assert f(1) == 2"], "setup": "import math"}
    assert json.loads(tests_of("asserts", {"t": '["assert f(1) == 2"]'}))["asserts"] == ["assert f(1) == 2"]
    assert json.loads(tests_of("asserts", {"t": "assert f(1) == 2"}))["asserts"] == ["assert f(1) == 2"]
    he = tests_of("humaneval", {"t": "def check(c): assert c(1) == 2", "entry_point": "f"})
    assert parse_tests(he)["entry_point"] == "f"
    assert json.loads(tests_of("ifeval", {"t": ["punctuation:no_comma"]}))["kwargs"] == [{}]
    assert tests_of("mbpp", {}) is None  # absent tests stay absent
    with pytest.raises(RowProblem) as e:
        tests_of("mbpp", {"t": [1, 2]})
    assert e.value.code == "wrong_type"
    with pytest.raises(RowProblem) as e:
        tests_of("humaneval", {"t": "def check(c): pass"})
    assert e.value.code == "missing_field"


def test_ifeval_tests_given_as_json_text_are_parsed_and_bad_ones_rejected() -> None:
    from builder.config.sources import SourceConfig
    from builder.sources.mapping import RowProblem, _tests_json

    SourceConfig(name="s", path="x.jsonl", fields={"prompt": "q"}, tests_format="ifeval")
    spec = json.loads(_tests_json("ifeval", {}, '["punctuation:no_comma", "change_case:english_lowercase"]'))
    assert spec["instruction_id_list"] == ["punctuation:no_comma", "change_case:english_lowercase"]
    assert spec["kwargs"] == [{}, {}]
    with pytest.raises(RowProblem) as e:
        _tests_json("ifeval", {}, {"punctuation:no_comma": {}})
    assert e.value.code == "wrong_type"
