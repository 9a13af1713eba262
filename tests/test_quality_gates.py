"""Quality gates: signals computed per shard, GX suites, and what blocks a release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder import tables
from builder.errors import UserError
from builder.recipe import load_recipe
from builder.release.stage import run_release
from builder.rows import VARIANT_FEATURES, storage_type
from builder.workdir import WorkDir
from quality.derive import count_think_tags, digest, ends_with_answer, last_turns, missing_columns
from tests.test_release_helpers import ROOT, build_work, rewrite_variant, write_recipe


def test_last_turns_handles_empty_and_null_conversations() -> None:
    messages = VARIANT_FEATURES.arrow_schema.field("messages").type
    arr = pa.array([
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a1"}],
        None,
        [],
        [{"role": "assistant", "content": "a4"}],
    ], storage_type(messages)).cast(messages)  # Arrow builds Json (extension) arrays only by a cast
    roles, contents = last_turns(pa.chunked_array([arr.slice(0, 2), arr.slice(2)]))
    assert roles.to_pylist() == ["assistant", None, None, "assistant"]
    assert contents.to_pylist() == ["a1", None, None, "a4"]


def test_ends_with_answer_is_exact() -> None:
    answers = {"p1": (len("42."), digest("42.")), "p2": (len("B"), digest("B"))}
    got = ends_with_answer(["p1", "p1", "p2", "p3"], ["So: 42.", "So: 42. ", "Answer: b", "x"], answers)
    assert got == [True, False, False, False]


def test_ends_with_answer_from_buffers_matches_the_text_rule() -> None:
    """The buffer-level check (no text decoded) agrees with the string rule, multi-byte
    characters, empty and missing turns included."""
    from quality.answer_keys import AnswerKeys
    from quality.derive import answer_keys, ends_with_answer_column, last_turn_index

    messages = VARIANT_FEATURES.arrow_schema.field("messages").type

    def table(pids: list[str], replies: list[str | None]) -> pa.Table:
        rows = [None if r is None else [{"role": "user", "content": "q"}, {"role": "assistant", "content": r}]
                for r in replies]
        return pa.table({"prompt_id": pids, "messages": pa.array(rows, storage_type(messages)).cast(messages)})

    answers = AnswerKeys([answer_keys(table(["p1", "p2", "p3", "p4"], ["答案是 42。", "B", "", None]))])
    assert len(answers) == 3 and answers.get("p4") is None and answers.get("p1")[0] == len("答案是 42。".encode())
    pids = ["p1", "p1", "p2", "p3", "p4", "p2", "p1"]
    texts = ["总结。答案是 42。", "答案是 42。 ", "Answer: b", "anything", "x", None, "案是 42。"]
    flat, idx = last_turn_index(table(pids, texts).column("messages"))
    got = ends_with_answer_column(pa.array(pids), flat, idx, answers).to_pylist()
    assert got == ends_with_answer(pids, texts, answers) == [True, False, False, True, False, False, False]


def test_language_ok_per_distinct_pair() -> None:
    from quality.derive import language_ok

    lang = pa.chunked_array([["en", "en+bn", "zh", None, "en"], ["und", "en"]])
    ans = pa.chunked_array([["en", "bn", "en", "fr", "unknown"], ["fr", None]])
    assert language_ok(lang, ans).to_pylist() == [True, True, False, True, True, True, True]


@pytest.mark.parametrize("pair", [False, True])
def test_think_tag_count_is_the_full_count(pair: bool) -> None:
    """The "k>" shortcut returns exactly count_substring_regex(text, "think>"), with texts built
    to fool it: "k>" that is no tag, tag-like words, doubled and broken tags, nulls, non-ASCII."""
    import pyarrow.compute as pc

    texts = pa.array(["", None, "no tags at all", "<think>a</think>b", "<think>a</think> rethink> b",
                      "<mark>x</mark> <think>y</think>", "<think><think></think>", "think>think>k>",
                      "</think>", "<thinks> <think >", "日本k>語<think>é</think>", "k>" * 3, "a/think>"])
    want = pc.count_substring_regex(texts, "think>")
    given = pc.add(pc.count_substring_regex(texts, "<think>"), pc.count_substring_regex(texts, "</think>"))
    got = count_think_tags(texts, given if pair else None)
    assert got.to_pylist() == want.to_pylist()
    assert count_think_tags(pa.array(["plain", "text"])).to_pylist() == [0, 0]  # nothing to recount


def test_missing_columns_names_the_nulls() -> None:
    t = pa.table({"a": ["x", None, None], "b": [1, 2, None]})
    assert missing_columns(t, ["a", "b"]).to_pylist() == ["", "a,", "a,b,"]


def test_blocking_failures_stop_the_release(tmp_path: Path) -> None:
    work = build_work(tmp_path / "work", n_en=12, n_zh=4, shard_rows=5)

    def plant_tags(rows: list[dict[str, Any]]) -> None:
        rows[0]["messages"][-1]["content"] = "<think>leaked</think> " + rows[0]["messages"][-1]["content"]

    def break_summary(rows: list[dict[str, Any]]) -> None:
        rows[1]["messages"][-1]["content"] += " (edited)"

    def cross_shard_duplicate(rows: list[dict[str, Any]]) -> None:
        rows[-1]["prompt_id"] = rows[0]["prompt_id"]  # rows 0 and -1 sit in different shards

    rewrite_variant(work, "answer", plant_tags)
    rewrite_variant(work, "think_summary", break_summary)
    def fake_close(rows: list[dict[str, Any]]) -> None:  # "<think>… rethink> …": no real close tag
        reply = rows[0]["messages"][-1]
        reply["content"] = reply["content"].replace("</think>", " rethink>", 1)

    rewrite_variant(work, "control", cross_shard_duplicate)
    rewrite_variant(work, "full", fake_close)
    contaminated = pq.read_table(work.shards(tables.variant("full"))[0]).column("prompt_id")[2].as_py()
    pq.write_table(pa.table({"benchmark": ["gsm8k"], "prompt_id": [contaminated]}),
                   work.path(tables.DECONTAMINATION))  # only prompt_id is read
    work.mark_complete("curate", (work.marker("curate") or {}).get("fingerprint"))  # planted as curate's output
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    out = tmp_path / "releases" / "v0.1.0"
    with pytest.raises(UserError) as e:
        run_release(recipe, work, out)
    msg = str(e.value)
    assert msg.startswith("release blocked: ") and "\n" not in msg
    assert f"nothing was written to {out}" in msg
    assert not out.exists() and not list(out.parent.glob(".*"))  # no half-written folder
    report = json.loads((work.root / "quality" / "quality.json").read_text())
    assert report["passed"] is False
    failed = {(c["variant"], c["check"]) for c in report["checks"] if not c["success"]}
    assert {("answer", "tag_grammar"), ("full", "tag_grammar"), ("think_summary", "summary_ends_with_answer"),
            ("control", "unique_row_id")} <= failed
    assert {("answer", "not_contaminated"), ("full", "not_contaminated"),
            ("think_summary", "not_contaminated")} <= failed
    assert (work.root / "quality" / "data_docs" / "index.html").is_file()
    assert "FAIL" in (work.root / "quality" / "data_docs" / "index.html").read_text()
    line = next(b for b in report["blocking_failures"] if b.startswith("answer: tag_grammar"))
    assert "1 of 16 rows" in line


def test_a_community_reply_with_any_reasoning_styles_tags_blocks(tmp_path: Path) -> None:
    """tag_grammar counted only "think>": an `original` turn in Marco-o1's <Thought>/<Output>,
    Sky-T1's markers or with R1's <answer> tags went out as a non-reasoning reply."""
    work = build_work(tmp_path / "work", n_en=12, n_zh=4, shard_rows=50)

    def plant(rows: list[dict[str, Any]]) -> None:
        for r, wrap in zip(rows, ("<Thought>\nLet me see.\n</Thought>\n<Output>\n{}\n</Output>",
                                  "<|begin_of_solution|>{}<|end_of_solution|>", "<answer>{}</answer>")):
            r["messages"][-1]["content"] = wrap.format(r["messages"][-1]["content"])

    rewrite_variant(work, "original", plant)
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    with pytest.raises(UserError, match=r"^release blocked: original: tag_grammar"):
        run_release(recipe, work, tmp_path / "out")
    report = json.loads((work.root / "quality" / "quality.json").read_text())
    failed = {(c["variant"], c["check"], c["unexpected"]) for c in report["checks"] if not c["success"]}
    assert failed == {("original", "tag_grammar", 3)}


def test_non_blocking_failures_are_warnings(tmp_path: Path) -> None:
    work = build_work(tmp_path / "work", n_en=8, n_zh=2, shard_rows=50)

    def wrong_language(rows: list[dict[str, Any]]) -> None:
        for r in rows[:3]:
            r["answer_language"] = "fr"

    rewrite_variant(work, "full", wrong_language)
    # A floor above the real pass rate blocks only when verification_rate is in `blocking`.
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", extra="  # end\n"))
    recipe.quality.verification_floor = {"*": 0.5, "chat": 1.01}
    recipe.quality.blocking = [b for b in recipe.quality.blocking if b != "verification_rate"]
    res = run_release(recipe, work, tmp_path / "out")
    assert (tmp_path / "out" / "README.md").is_file()
    assert any(w.startswith("full: language_consistent") for w in res.warnings)
    assert any(w.startswith("answer: verification_rate") for w in res.warnings)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| full | language_consistent | no | **fail** | 3 |" in card


def test_student_token_limit_blocks(tmp_path: Path) -> None:
    work = build_work(tmp_path / "work", n_en=6, n_zh=0)
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    recipe.student.max_tokens = 50
    with pytest.raises(UserError, match=r"student_tokens_within_max \(expect_column_values_to_be_between student_tokens\)"):
        run_release(recipe, work, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_blocking_check_is_a_recipe_error(tmp_path: Path) -> None:
    path = write_recipe(tmp_path / "r.yaml", extra="")
    path.write_text(path.read_text().replace("  mix: {tolerance: 0.2}", "  blocking: [schema, tag_gramar]\n  mix: {tolerance: 0.2}"))
    with pytest.raises(UserError, match=r"quality\.blocking: unknown check\(s\) \['tag_gramar'\]"):
        load_recipe(path)


def test_shard_schemas_are_checked_and_normalised(tmp_path: Path) -> None:
    from builder.release.folder import is_published_schema

    work = build_work(tmp_path / "work", n_en=6, n_zh=2, shard_rows=50)
    # A shard written without the HF features metadata is rewritten with it…
    shard = work.shards(tables.variant("control"))[0]
    pq.write_table(pq.read_table(shard).replace_schema_metadata(None), shard)
    work.mark_complete("variants")  # planted as the stage's own output
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    run_release(recipe, work, tmp_path / "ok")
    out = next((tmp_path / "ok" / "data" / "control").glob("*.parquet"))
    assert is_published_schema(pq.read_schema(out)) and not is_published_schema(pq.read_schema(shard))
    # …but a shard missing a column is a blocking schema failure.
    pq.write_table(pq.read_table(shard).drop_columns(["verify_status"]), shard)
    work.mark_complete("variants")
    with pytest.raises(UserError, match=r"control: schema \(arrow_schema_matches_features\)"):
        run_release(recipe, work, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_the_verification_floor_counts_the_failures_the_release_left_out(sample_build: Any, tmp_path: Path) -> None:
    """Replies that fail verification are not kept by default, so the `answer` rows only say pass
    or unverifiable and the floor read 100% whatever the teacher got right: the sample's 15 Bangla
    and MMLU-Pro prompts whose R1 reply failed its answer key are counted now (chat 175 / 190)."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(sample_build.release.parent, work, ignore=shutil.ignore_patterns("release", ".lock"))
    quarantine = pq.read_table(work / "responses" / "quarantine",
                               columns=["prompt_id", "teacher_role", "verify_status"]).to_pylist()
    kept = {r["prompt_id"] for r in pq.read_table(work / "responses" / "parsed", columns=["prompt_id"]).to_pylist()}
    left_out = {r["prompt_id"] for r in quarantine
                if r["teacher_role"] == "reasoning" and r["verify_status"] == "fail"} - kept  # fmt: skip
    assert len(left_out) == 15
    quality = json.loads((sample_build.release / "quality.json").read_text())
    chat = quality["variants"]["answer"]["verification"]["chat"]
    assert (chat["pass"], chat.get("fail", 0), chat["failed_left_out"]) == (175, 0, 15)
    assert chat["pass_rate"] == round(175 / 190, 4)
    assert "| chat | 175 | 0 | 117 | 15 | 92.1% |" in (sample_build.release / "README.md").read_text()

    recipe = load_recipe(ROOT / "recipes" / "sample.yaml")
    recipe.quality.verification_floor = {"*": 0.5, "chat": 0.95}
    with pytest.raises(UserError, match=r"^release blocked: answer: verification_rate .*: 1 of 2 rows"):
        run_release(recipe, work, tmp_path / "out")


def test_summaries_are_checked_against_the_replies_when_no_answer_config_is_built(sample_build: Any,
                                                                                   tmp_path: Path) -> None:
    """`variants.build: [think_summary]`: summaries were checked against the `answer` config's
    rows, which this release has none of, so all 305 failed summary_ends_with_answer and no such
    release could be made. The selected replies' answers are the reference now; an edited summary
    row still blocks."""
    import shutil

    from builder.variants.stage import run_variants

    work_dir = tmp_path / "work"
    shutil.copytree(sample_build.release.parent, work_dir, ignore=shutil.ignore_patterns("release", ".lock"))
    recipe = load_recipe(ROOT / "recipes" / "sample.yaml")
    recipe.variants.build = ["think_summary"]
    recipe.quality.mix = type(recipe.quality.mix)(tolerance=0.10)  # mix.variants unset (the sample names answer)
    work = WorkDir(work_dir)
    run_variants(recipe, work)
    res = run_release(recipe, work, tmp_path / "out")
    assert res.counts == {"think_summary": 305}
    assert not [c for c in res.checks if c["check"] == "summary_ends_with_answer" and not c["success"]]
    # The verification floor (unset verification_variants) applies to think_summary, not to nothing.
    assert [(c["variant"], c["success"]) for c in res.checks if c["check"] == "verification_rate"] == \
        [("think_summary", True)]
    # So does the mix check (mix.variants unset), which checked nothing in a release without answer.
    assert {c["variant"] for c in res.checks if c["check"] in ("category_mix", "source_mix")} == {"think_summary"}

    def edit(rows: list[dict[str, Any]]) -> None:
        rows[0]["messages"][-1]["content"] += " "

    rewrite_variant(work, "think_summary", edit)
    with pytest.raises(UserError, match=r"^release blocked: think_summary: summary_ends_with_answer .*: 1 of 305 rows"):
        run_release(recipe, work, tmp_path / "out2")


def test_the_verification_rate_is_compared_exact_and_rounded_only_for_the_card() -> None:
    """89,999 passes of 100,000 is under a 0.9 floor; rounded to 4 places (as the card prints it) it
    would read 0.9 and pass the gate."""
    from collections import Counter

    from builder.release import verified

    rates = verified.rates({"math": Counter({"pass": 89_999, "fail": 1})}, Counter({"math": 10_000}))
    assert rates["math"]["pass_rate"] == 89_999 / 100_000 < 0.9
    assert verified.shown(rates)["math"]["pass_rate"] == 0.9 and verified.shown(rates)["math"]["failed_left_out"] == 10_000


def test_the_failures_left_out_are_counted_batch_by_batch(sample_build: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The count read each table whole (`pq.read_table`) while staging streams them: at ~500k
    replies its Arrow peak was 43 MB, 18 MB by batches. Same count as the card's (15 chat)."""
    from builder.release import verified

    def whole(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("read a whole table")

    monkeypatch.setattr(verified.pq, "read_table", whole)
    monkeypatch.setattr(verified, "_BATCH_ROWS", 7)  # several batches a shard: ids seen in more than one
    assert verified.failed_left_out(WorkDir(sample_build.release.parent)) == {"chat": 15}
