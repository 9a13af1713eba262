"""Adding a variant is one registry entry: a variant registered here, in the test only, flows
through the variants stage, the quality gates and the release without any other edit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from builder.errors import UserError
from builder.release.manifest import card_metadata
from builder.release.stage import run_release
from builder.variants.registry import REGISTRY, Candidate, Skip, to_build, unregister, variant
from builder.variants.stage import run_variants
from tests.fixtures.stages import REPO, build_responded, sample_recipe

NAME = "answer_upper"
BLURB = "the teacher's final answer, upper-cased (a variant registered by a test)"
# Where a variant would otherwise have to be named: the packages, the card template, the recipes.
SOURCES = [*(p for pkg in ("builder", "quality", "train_reference") for p in (REPO / pkg).rglob("*.py")),
           REPO / "dataset_card.md", *(REPO / "recipes").rglob("*.yaml")]


def _recipe_file(tmp_path: Path, build: list[str]) -> Path:
    """The sample recipe with `variants.build` set, as a file (for the CLI's `load`)."""
    data = yaml.safe_load((REPO / "recipes" / "sample.yaml").read_text(encoding="utf-8"))
    data.setdefault("variants", {})["build"] = build
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _named_in_sources() -> list[str]:
    """Source files that name the test's variant (none may: registering it is the only edit)."""
    return [p.relative_to(REPO).as_posix() for p in SOURCES if NAME in p.read_text(encoding="utf-8")]


@pytest.fixture
def answer_upper() -> Iterator[str]:
    @variant(NAME, reply="reasoning", blurb=BLURB, default=False)
    def upper(c: Candidate) -> str | Skip:
        if c.reasoning is None:
            return Skip("no_kept_reply")
        return (c.reasoning["answer"] or "").upper() or Skip("empty_answer")

    try:
        yield NAME
    finally:  # other tests see the registry as the code defines it
        unregister(NAME)
    assert NAME not in REGISTRY


def test_registering_twice_is_refused(answer_upper: str) -> None:
    with pytest.raises(ValueError, match="already registered"):
        variant(answer_upper, reply=None, blurb="x")(lambda c: "x")


def test_a_registered_variant_flows_to_the_release(answer_upper: str, tmp_path: Path) -> None:
    assert _named_in_sources() == [], "the variant must be named by the test only"
    assert NAME not in to_build(None)  # default=False: built only when a recipe names it

    # The CLI's recipe check knows it (it reads the registry).
    from builder.cli import load

    assert load(_recipe_file(tmp_path, ["answer", NAME])).variants.build == ["answer", NAME]

    planted, _ = build_responded(tmp_path / "work")
    recipe = sample_recipe(variants={"build": ["answer", NAME]})
    res = run_variants(recipe, planted.work)
    assert res.counts[NAME] == res.counts["answer"] > 0
    summary = json.loads((planted.work.root / "variants" / "summary.json").read_text())
    assert [s["name"] for s in summary["specs"]] == ["answer", NAME]

    out = tmp_path / "release"
    rel = run_release(recipe, planted.work, out)
    assert rel.counts == {"answer": res.counts["answer"], NAME: res.counts[NAME]}

    # Its config, with rows built from the reasoning reply (and carrying its provenance).
    files = sorted((out / "data" / NAME).glob("train-*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    answers = {r["prompt_id"]: r for f in sorted((out / "data" / "answer").glob("*.parquet"))
               for r in pq.read_table(f).to_pylist()}
    assert len(rows) == res.counts[NAME]
    for r in rows:
        a = answers[r["prompt_id"]]
        assert r["variant"] == NAME and r["messages"][-1]["content"] == a["messages"][-1]["content"].upper()
        assert r["generation_id"] == a["generation_id"] and r["teacher_model"] == a["teacher_model"]
        assert r["summarizer"] is None  # no summary: its spec does not ask for one

    # The card lists it with its blurb; the card's configs, the manifest and the gates know it.
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"| `{NAME}` | {BLURB} | {len(rows):,} |" in card
    assert NAME in {c["config_name"] for c in card_metadata(out / "README.md")["configs"]}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["configs"][NAME]["num_examples"] == len(rows)
    quality = json.loads((out / "quality.json").read_text())
    checked = {c["check"] for c in quality["checks"] if c["variant"] == NAME}
    assert {"schema", "not_null", "tag_grammar", "not_contaminated"} <= checked
    assert "summary_ends_with_answer" not in checked
    # Nothing but the registration: no source file names it, before or after the run.
    assert _named_in_sources() == []


def test_an_unregistered_name_is_a_recipe_error(tmp_path: Path) -> None:
    from builder.cli import load

    with pytest.raises(UserError, match=rf"variants\.build: unknown variant\(s\) \['{NAME}'\]"):
        load(_recipe_file(tmp_path, ["answer", NAME]))


def test_original_leaves_out_community_replies_with_any_reasoning_tags() -> None:
    """A community reply in Marco-o1's <Thought>/<Output> or Sky-T1's markers, or with R1's
    <answer> tags, is not a non-reasoning reply: it is left out of `original` with a reason
    (only R1's <think> was caught before, so Marco-o1's CoT demo went out as `original` rows)."""
    marco = json.loads((REPO / "data" / "sample" / "marco_cot.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert "<Thought>" in marco["response"]

    def skip(resp: str) -> object:
        return REGISTRY["original"].fn(Candidate(prompt={"original_response": resp}, reasoning=None, control=None))

    assert skip(marco["response"]) == Skip("think_tag_in_original")
    assert skip("<|begin_of_thought|>\n2+2\n<|end_of_thought|>\n<|begin_of_solution|>4<|end_of_solution|>") == \
        Skip("think_tag_in_original")
    assert skip("<answer>4</answer>") == Skip("answer_tag_in_original")
    assert skip("The answer is 4 (see <b>bold</b>).") == "The answer is 4 (see <b>bold</b>)."
