"""The constraint detector, the constraints list format, the format survival gate and the adaptive choice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from builder.config.variants import AdaptivePolicy, VariantsConfig
from builder.constraints.apply import constrain_summary
from builder.constraints.detect import detect, prompt_constraints, score
from builder.constraints.spec import BadConstraints, Constraint, contradictions, parse
from builder.errors import UserError
from builder.variants.adaptive import choose
from builder.variants.format_gate import Survival, apply_gate
from builder.variants.registry import Candidate
from tests.corpus import corpus_dir

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "constraints_rephrased.jsonl"
IFEVAL = corpus_dir() / "ifeval" / "input_data.jsonl"


@pytest.mark.parametrize(("name", "least"), [("rephrased", 60), ("heldout", 30)])
def test_own_sets_meet_the_targets(name: str, least: int) -> None:
    rows = [json.loads(x) for x in (FIXTURE.parent / f"constraints_{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= least and sum(any("\u4e00" <= c <= "\u9fff" for c in r["prompt"]) for r in rows) >= 8
    s = score([(detect(r["prompt"]), parse(r["constraints"])) for r in rows])
    assert s["precision"] >= 0.97 and s["recall"] >= 0.93 and s["arg_exact"] >= 0.9, s


@pytest.mark.skipif(not IFEVAL.is_file(), reason="needs ../shared/corpus/ifeval")
def test_ifeval_prompts_meet_the_targets() -> None:
    rows = [json.loads(x) for x in IFEVAL.read_text().splitlines() if x.strip()]
    s = score([(detect(r["prompt"]), parse([{"id": i, "kwargs": k} for i, k in zip(r["instruction_id_list"], r["kwargs"])]))
               for r in rows])  # fmt: skip
    assert s["precision"] >= 0.97 and s["recall"] >= 0.93 and s["arg_exact"] >= 0.9, s


def test_score_can_fail() -> None:
    got = [Constraint("punctuation:no_comma")]
    gold = [Constraint("length_constraints:number_words", {"relation": "less than", "num_words": 5})]
    s = score([(got, gold)])
    assert s["precision"] == 0.0 and s["recall"] == 0.0


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("{broken", "not JSON"),
        ('{"id": "punctuation:no_comma"}', "JSON list"),
        ('[{"id": "made:up"}]', "unknown instruction id"),
        ('[{"id": "length_constraints:number_words", "kwargs": {"relation": "about", "num_words": 5}}]', "relation"),
        ('[{"id": "length_constraints:number_words", "kwargs": {"num_words": 5}}]', "missing"),
        ('[{"id": "keywords:existence", "kwargs": {"keywords": []}}]', "non-empty list"),
    ],
)
def test_malformed_constraints_are_one_line(data: str, fragment: str) -> None:
    with pytest.raises(BadConstraints, match=fragment) as e:
        parse(data)
    assert "\n" not in str(e.value)


def test_source_list_wins_then_ifeval_tests_then_detection() -> None:
    given = [{"id": "startend:quotation", "kwargs": {}}]
    assert [c.id for c in prompt_constraints(given, None, "Use no commas.")] == ["startend:quotation"]
    tests = json.dumps({"format": "ifeval", "instruction_id_list": ["detectable_format:title"], "kwargs": [{}]})
    assert [c.id for c in prompt_constraints(None, tests, "Use no commas.")] == ["detectable_format:title"]
    assert [c.id for c in prompt_constraints(None, None, "Use no commas.")] == ["punctuation:no_comma"]
    with pytest.raises(BadConstraints):
        prompt_constraints("[{]", None, "x")


def test_contradictions_are_named_not_raised() -> None:
    items = detect("Write it in all lowercase letters. Your entire response should be in all capital letters.")
    assert "change_case:english_lowercase|change_case:english_capital" in contradictions(items)
    words = parse([{"id": "length_constraints:number_words", "kwargs": {"relation": "less than", "num_words": 10}},
                   {"id": "length_constraints:number_words", "kwargs": {"relation": "at least", "num_words": 50}}])
    assert contradictions(words) == ["length_constraints:number_words|length_constraints:number_words"]


def test_policy_with_unknown_constraint_id_or_category_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown constraint id"):
        VariantsConfig.model_validate({"adaptive": {"answer_only_constraints": ["punctuation:no_commas"]}})
    with pytest.raises(ValidationError, match="unknown categories"):
        AdaptivePolicy.model_validate({"answer_categories": ["poetry"]})


LOWER = [Constraint("change_case:english_lowercase")]


@pytest.mark.parametrize(("policy", "turn_starts"), [("fallback_answer", "the answer"), ("drop", None), ("rewrite", "so we add")])
def test_gate_policies(policy: str, turn_starts: str | None) -> None:
    answer = "the answer is four."
    summary = "So we add Two and Two."
    s = Survival()
    o = apply_gate(f"{summary}\n\n{answer}", answer, summary, LOWER, policy, True, "think_summary", "chat", s)
    assert (o.turn is None) if turn_starts is None else o.turn.startswith(turn_starts)
    assert "format_broken:change_case:english_lowercase" in (o.codes or [o.drop])[0:1] + [o.drop]
    row = s.table()["think_summary"]["chat"]
    assert row["survival_raw"] == 0.0 and row["survival"] == (0.0 if policy == "drop" else 1.0)


def test_ungated_variant_is_recorded_not_changed() -> None:
    o = apply_gate("Summary A.\n\nthe answer", "the answer", "Summary A.", LOWER, "drop", False, "full", "chat", Survival())
    assert o.turn == "Summary A.\n\nthe answer" and o.codes == ["format_broken:change_case:english_lowercase"]


def test_extractive_constraint_application_and_declines() -> None:
    items = parse([{"id": "punctuation:no_comma", "kwargs": {}}, {"id": "startend:quotation", "kwargs": {}},
                   {"id": "keywords:forbidden_words", "kwargs": {"forbidden_words": ["cat"]}},
                   {"id": "length_constraints:number_words", "kwargs": {"relation": "less than", "num_words": 12}}])
    out, declined = constrain_summary("First, we count. The cat sleeps. Then we add two and three and four.", "Five words are here.", items)
    assert "," not in out and "cat" not in out and len(out.split()) <= 6
    assert declined == ["startend:quotation"]


def _cand(**kw: object) -> Candidate:
    reply = {"answer": "A", "info_codes": kw.get("codes", []), "verify_status": kw.get("status", "pass"),
             "teacher_think_tokens": kw.get("tokens", 1000)}
    return Candidate({"category": kw.get("category", "chat")}, reply, None, summary=kw.get("summary", "S."),  # type: ignore[arg-type]
                     constraints=kw.get("items", []))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "breaks", "choice"),
    [
        ({}, [], ("summary", "summary:chat")),
        ({"summary": None}, [], ("answer", "no_summary:none")),
        ({"items": [Constraint("detectable_format:json_format")]}, [], ("answer", "constraint:detectable_format:json_format")),
        ({}, ["punctuation:no_comma"], ("answer", "format:punctuation:no_comma")),
        ({"codes": ["think_answer_mismatch"]}, [], ("answer", "code:think_answer_mismatch")),
        ({"status": "fail"}, [], ("answer", "verify:fail")),
        ({"tokens": 10}, [], ("answer", "short_thinking:10")),
    ],
)
def test_adaptive_choice(kw: dict, breaks: list[str], choice: tuple[str, str]) -> None:
    assert choose(_cand(**kw), AdaptivePolicy(), breaks) == choice


def test_cli_prints_one_line_per_row_and_refuses_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "in.jsonl"
    good.write_text('{"id": 1, "prompt": "Answer without any commas."}\n'
                    '{"id": "b", "messages": [{"role": "user", "content": "请以JSON格式输出。"}]}\n', encoding="utf-8")
    cmd = [sys.executable, "-m", "builder.cli", "constraints"]
    r = subprocess.run([*cmd, str(good)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines == [{"id": 1, "constraints": [{"id": "punctuation:no_comma", "kwargs": {}}]},
                     {"id": "b", "constraints": [{"id": "detectable_format:json_format", "kwargs": {}}]}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "prompt": "ok"}\n{"id": 2}\n')
    r = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) <= 2 and "bad.jsonl:2" in r.stderr.replace("\n", "")


def test_constraints_reader_on_a_folder_and_a_bom(tmp_path: Path) -> None:
    """A folder is one line (it was an IsADirectoryError: "internal error"); a UTF-8 BOM, as
    Windows editors write it, is not a broken first row."""
    from builder.constraints.rows import read_rows

    with pytest.raises(UserError, match=f"{tmp_path}: is a folder; give a JSONL file"):
        read_rows(tmp_path)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b'\xef\xbb\xbf{"id": 1, "prompt": "Answer without any commas."}\r\n')
    assert read_rows(bom) == [(1, "Answer without any commas.")]


GPT4 = corpus_dir() / "ifeval" / "input_response_data_gpt4_20231107_145030.jsonl"
# lm-eval's checkers for these need nltk data (punkt) or langdetect models, absent offline.
_NEEDS_DATA = {"length_constraints:number_sentences", "language:response_language", "change_case:english_capital",
               "change_case:english_lowercase", "change_case:capital_word_frequency"}  # fmt: skip


@pytest.mark.skipif(not GPT4.is_file(), reason="needs ../shared/corpus/ifeval")
def test_detected_kwargs_drive_lm_evals_own_checkers_to_our_verdicts() -> None:
    """Cross-check with lm-eval's IFEval: our kwargs names are its build_description's, and on IFEval's
    GPT-4 replies its checkers, built from our detected kwargs, agree with ours."""
    import inspect

    registry = pytest.importorskip("lm_eval.tasks.ifeval.instructions_registry")
    from builder.constraints.checks import check
    from builder.constraints.spec import KWARGS

    for cid, names in KWARGS.items():
        params = inspect.signature(registry.INSTRUCTION_DICT[cid](cid).build_description).parameters
        assert set(names) <= set(params), cid
    agree = total = 0
    for line in GPT4.read_text().splitlines():
        r = json.loads(line)
        for c in detect(r["prompt"]):
            ours = check(c.id, c.kwargs, r["response"])
            if c.id in _NEEDS_DATA or ours is None:
                continue
            ins = registry.INSTRUCTION_DICT[c.id](c.id)
            ins.build_description(**c.kwargs)
            total += 1
            agree += ins.check_following(r["response"]) == ours
    assert total > 500 and agree / total >= 0.99, (agree, total)


def test_recipe_policy_with_unknown_id_is_one_line_exit_2(tmp_path: Path) -> None:
    recipe = (ROOT / "recipes" / "sample.yaml").read_text().replace("../data/", str(ROOT / "data") + "/")
    path = tmp_path / "r.yaml"
    path.write_text(recipe + "\nvariants:\n  adaptive: {answer_only_constraints: [detectable_format:jsonformat]}\n")
    r = subprocess.run([sys.executable, "-m", "builder.cli", "plan", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "variants.adaptive.answer_only_constraints" in r.stderr.replace("\n", "") and "jsonformat" in r.stderr


def test_forked_detection_matches_the_inline_path() -> None:
    """curate splits detection over forked workers on large runs: same values, same order."""
    from builder.constraints.detect import constraints_json_many

    texts = ["Answer in all lowercase letters, no commas.", "What is 2+2?", "Write at least 300 words.",
             "请用不超过50个字回答。", "Wrap your entire response in JSON."]  # fmt: skip
    items = [(None, f"{t} ({i})") for i in range(60) for t in texts]
    inline = constraints_json_many(items, workers=1, chunk=7)
    assert constraints_json_many(items, workers=2, chunk=7) == inline
    assert sum(j != "[]" for j in inline) == 3 * 60  # lowercase+commas, word count, JSON: found every time


# Phrasings at the edges of the detector's cheap gates (a gate that is too tight drops these).
_GATE_EDGES = [
    "Exclude the words apple and pear.", "Excluding these key words: red, blue.", "Never use the terms foo, bar.",
    "Banned words using slang are fine; do not use 'lol' or 'omg'.", "Don't use:   'alpha', 'beta'.",
    "Do not include any of the following: cat, dog.", "The word 'very' should not appear in your reply.",
    "Avoid mentioning these phrases   :  hello world, goodbye.", "Words like 'ok' must never be used.",
    "Mention \"Paris\" in your answer.", "Include the keywords sun and moon.", "Use the word 'blue' at least 3 times.",
    "Say 'yes' twice.", "EMPHASIZE at least 2 sections with markdown.", "Bold 3 phrases.", "Write in ALL CAPS.",
    "Your response should be in upper-case only.", "Capitalize all words.", "Stress words: at least twice in caps.",
    "End your response with 'Any questions?'", "The last sentence should be: Bye.", "The end of your reply must read OK",
    "Finish it with \"Done\".", "Day X: plan. Write 5 days.", "Use SECTION X for 3 sections.", "Write in Italian only.",
    "请不要使用逗号。", "回答不超过50个单词。", "用三句话回答。", "请写3段，用***分隔。", "请用英文回答。",
    "以“谢谢”结尾。", "请高亮至少2处。", "全部使用小写字母。", "请给出两个不同的回答，用******分隔。",
    "“苹果”这个词至少出现3次。", "包含关键词“春天”、“花”。", "字母a至少出现5次。", "不要使用以下词语：坏、差。",
    "HİGHLIGHT at least 2 sections with markdown.", "Wrıte ın all lowercase letters.", "Avoıd the words x, y.",
    # the count/range/named-count gates of the length rule, and the other rules' tighter gates
    "Answer in 3 or more sentences.", "Use between 100 and 150 words.", "Keep the word count under 80.",
    "The number of sentences should be less than 6.", "Write exactly two sentences.", "Use twenty-five words or fewer.",
    "Give 2 different responses.", "Separate them with six asterisks.", "Use 4 markdown bullet points.",
    "Bullet list with exactly 3 items.", "Include at least 2 placeholders like [name].", "Mark placeholders with square brackets.",
    "Write it only in Hindi, no other language.", "Your entire reply must be in French.", "Italicize 2 phrases.",
    "The 2nd paragraph must start with the word 'Next'. Write 3 paragraphs.", "Use the SECTION X format, 4 sections.",
    "Make sure the word 'bad' is not used anywhere.", "Do not say any of the following: x, y.", "Include key words alpha and beta.",
]  # fmt: skip


def test_gates_change_no_detection() -> None:
    """The substring gates only skip rules that could not match: gated == ungated on real and edge prompts."""
    prompts = list(_GATE_EDGES)
    for name in ("rephrased", "heldout"):
        fx = FIXTURE.parent / f"constraints_{name}.jsonl"
        prompts += [json.loads(x)["prompt"] for x in fx.read_text(encoding="utf-8").splitlines() if x.strip()]
    if IFEVAL.is_file():
        prompts += [json.loads(x)["prompt"] for x in IFEVAL.read_text(encoding="utf-8").splitlines() if x.strip()]
    prompts += [p.upper() for p in prompts[:200]]
    found = 0
    for p in prompts:
        got = detect(p)
        assert got == detect(p, gated=False), p
        found += bool(got)
    assert found >= len(prompts) // 2  # the set really states constraints (the check is not vacuous)
    assert detect("Never use the terms foo, bar.")[0].kwargs["forbidden_words"] == ["foo", "bar"]
