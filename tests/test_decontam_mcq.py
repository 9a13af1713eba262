"""A multiple-choice item copied with its choices reordered and relabelled is still the item (rule `mcq`).

The recipes index MMLU by its question; a short or generic question ("Food allergies:", "Which of
the following statements is true?") is no evidence alone, so a copy with its choices shuffled and
relabelled passed: 19 of 400 seeded MMLU leaks (benchmarks/adversarial_mcq.py, seed 0). With
`choice_fields`, a prompt that holds the whole stem and every choice right after it is the item.
Precision: never on part of the choices, on another item's choices, or on choices far from the stem.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder.config.curate import DecontamConfig
from builder.curate.decontam import BenchmarkIndex, build_index
from builder.errors import UserError
from builder.recipe import load_recipe
from tests.corpus import corpus_dir

ROOT = Path(__file__).resolve().parents[1]
CORPUS = corpus_dir()

STEM = "Which of the following statements is true?"
ITEMS = {
    "lichens": (STEM, ["Lichens fix nitrogen only in tropical soils", "Lichens are a partnership of a fungus and an alga",
                       "Lichens grow fastest in polluted air", "Lichens are the larval form of mosses"]),
    "tides": (STEM, ["Spring tides happen only in spring", "Neap tides follow the full moon by one week",
                     "Tides are raised mostly by the Moon", "Tides stop at the equator"]),
    "comets": (STEM, ["Comets are made of iron", "Comet tails point away from the Sun", "Comets orbit the Earth",
                      "Comets never return"]),
    "glaciers": (STEM, ["Glaciers flow uphill", "Glaciers hold most of the fresh water on Earth",
                        "Glaciers form only at the poles", "Glaciers are made of salt"]),
    "cofactors": ("Catalytic cofactors are:", ["loosely attached to the substrate by salt bridges.",
                  "always proteins.", "tightly attached to enzymes and required for their activity.",
                  "absent from enzymes in the nucleus."]),
}  # fmt: skip
# four items share the question: as in MMLU, it is boilerplate (an n-gram in more than 3 items)


def _index(with_choices: bool = True) -> BenchmarkIndex:
    idx = BenchmarkIndex(DecontamConfig())
    for item_id, (stem, choices) in ITEMS.items():
        if with_choices:
            idx.add("bench", item_id, stem, choices)
        else:
            idx.add("bench", item_id, stem)
    idx.finish()
    return idx


def _layout(stem: str, choices: list[str], form: str) -> str:
    if form == "inline":
        return stem + " " + " ".join(f"({'ABCD'[i]}) {c}" for i, c in enumerate(choices))
    return stem + "\n" + "\n".join(form.format(k="ABCD"[i], c=c) for i, c in enumerate(choices))


def test_reordered_relabelled_choices_of_a_short_or_generic_question_are_caught() -> None:
    idx = _index()
    rng = random.Random(0)
    for item_id, (stem, choices) in ITEMS.items():
        for form in ("{k}. {c}", "({k}) {c}", "{k}) {c}", "{k}: {c}", "inline"):
            shuffled = choices[:]
            while shuffled == choices:
                rng.shuffle(shuffled)
            text = f"The following is a multiple choice question.\n\n{_layout(stem, shuffled, form)}\nAnswer:"
            hit = idx.match(text)
            assert hit is not None and (hit.item_id, hit.rule) == (item_id, "mcq"), (item_id, form, hit)
            assert "all 4 choices" in hit.detail
    # without the choices the question alone is no evidence: the rule needs `choice_fields`
    lichens = _layout(STEM, ITEMS["lichens"][1][::-1], "{k}. {c}")
    assert _index(with_choices=False).match(lichens) is None


def test_the_stem_and_every_choice_are_needed_and_the_choices_follow_the_stem() -> None:
    idx = _index()
    _, lichens = ITEMS["lichens"]
    _, tides = ITEMS["tides"]
    assert idx.match(_layout(STEM, lichens[:3], "{k}. {c}")) is None  # one choice left out
    assert idx.match(_layout(STEM, lichens[:2] + tides[:2], "{k}. {c}")) is None  # two items' choices mixed
    assert idx.match(_layout("Which of the following statements is false?", lichens, "{k}. {c}")) is None
    far = STEM + " Think of field trips you made last summer, the plants you saw on rocks, on old walls and on " \
        "the bark of trees, and of what your teacher said about them. " + " ".join(lichens)  # fmt: skip
    assert idx.match(far) is None
    assert idx.match("\n".join(lichens) + "\n" + STEM) is None  # the choices before the question


def test_an_item_of_few_words_is_left_to_the_other_rules() -> None:
    idx = BenchmarkIndex(DecontamConfig())
    idx.add("bench", "sum", "4 + 3 =", ["7", "1", "12", "6"])
    idx.finish()
    assert len(idx.mcq) == 0
    assert idx.match("List the numbers 4 3 7 1 12 6 in order.") is None


def _recipe(tmp_path: Path, rows: list[dict], bench: dict) -> Path:
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "s.jsonl").write_text('{"q": "hello there, how are you today?"}\n')
    recipe = {
        "name": "t",
        "version": "0.0.1",
        "sources": [{"name": "s", "path": "s.jsonl", "fields": {"prompt": "q"}}],
        "curate": {"near_dedupe": {"enabled": False},
                   "decontaminate": {"benchmarks": [{"name": "b", "path": "b.jsonl", "id_field": "id"} | bench]}},
    }  # fmt: skip
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_choice_fields_in_a_recipe_a_list_or_one_field_per_choice(tmp_path: Path) -> None:
    stem, choices = ITEMS["cofactors"]
    leak = _layout(stem, choices[::-1], "({k}) {c}")
    as_list = [{"id": "c", "question": stem, "choices": choices}]
    for rows, bench in (
        (as_list, {"text_fields": ["question"], "choice_fields": ["choices"]}),
        (as_list, {"text_fields": ["question", "choices"], "choice_fields": ["choices"]}),  # the stem is the question
        ([{"id": "c", "question": stem} | dict(zip("ABCD", choices))],
         {"text_fields": ["question"], "choice_fields": ["A", "B", "C", "D"]}),
        ([{"id": "c", "question": stem, "options": dict(zip("ABCD", choices))}],  # a {label: choice} mapping
         {"text_fields": ["question"], "choice_fields": ["options"]}),
    ):  # fmt: skip
        r = load_recipe(_recipe(tmp_path, rows, bench))
        hit = build_index(r, r.curate.decontaminate).match(leak)
        assert hit is not None and hit.item_id == "c", bench


def test_choice_fields_that_give_no_item_two_choices_are_one_line_exit_2(tmp_path: Path) -> None:
    stem, choices = ITEMS["cofactors"]
    rows = [{"id": "c", "question": stem, "choices": choices, "options": "A. one B. two"}]
    r = load_recipe(_recipe(tmp_path, rows, {"text_fields": ["question"], "choice_fields": ["answers"]}))
    with pytest.raises(UserError, match="benchmark field 'answers' is missing; fix `choice_fields`"):
        build_index(r, r.curate.decontaminate)
    path = _recipe(tmp_path, rows, {"text_fields": ["question"], "choice_fields": ["options"]})
    r = load_recipe(path)
    with pytest.raises(UserError, match=r"choice_fields: \['options'\] give no item two choices"):
        build_index(r, r.curate.decontaminate)
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "curate", str(path), "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert "give no item two choices" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is not available (real MMLU rows for the leaks)")
def test_reordered_mmlu_leaks_are_caught_and_real_mcqs_of_other_sets_are_not() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import adversarial as adv
    import adversarial_mcq as adv_mcq

    specs = [b for b in adv.benchmark_specs() if b.name in ("mmlu", "gsm8k", "math500")]
    idx = BenchmarkIndex(DecontamConfig())
    adv.add_items(idx, specs)
    idx.finish()
    leaks = adv_mcq.reordered_leaks(seed=7, n=400)
    hits = idx.match_many([r.text for r in leaks])
    assert sum(h is not None and h.benchmark == "mmlu" for h in hits) >= 398
    clean = adv_mcq.clean_mcq(seed=7, items=[t for b in specs for _, t in adv.load_items(b)])
    assert len(clean) > 10000
    flagged = [(r.source, h.rule, r.text[:80]) for r, h in zip(clean, idx.match_many([r.text for r in clean])) if h]
    assert not [f for f in flagged if f[1] == "mcq"], flagged


def test_choice_fields_that_leave_no_question_are_refused_at_load(tmp_path: Path) -> None:
    """text_fields all in choice_fields left every stem empty: the multiple-choice rule dropped every
    item without a word, and the card said it ran."""
    stem, choices = ITEMS["cofactors"]
    rows = [{"id": "c", "question": stem, "choices": choices}]
    with pytest.raises(UserError, match=r"benchmarks\[0=b\]: text_fields \['choices'\] are all choice_fields: add the"):
        load_recipe(_recipe(tmp_path, rows, {"text_fields": ["choices"], "choice_fields": ["choices"]}))
