"""A typo in any section of the recipe stops `build` before any work directory is written:
exit 2, one line naming the key path and the closest valid key."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from builder.errors import UserError
from builder.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = yaml.safe_load((ROOT / "recipes/sample.yaml").read_text())


def _typo(path: tuple[Any, ...], bad: str, value: Any = 1) -> dict[str, Any]:
    data = copy.deepcopy(SAMPLE)
    node = data
    for part in path:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[bad] = value
    return data


# (where the typo goes, the misspelt key, the key path the error must name, the suggestion)
CASES = [
    ((), "descripton", "descripton", "description"),
    (("sources", 0, "fields"), "promt", r"sources\[0=[^\]]+\]\.fields\.promt", "prompt"),
    (("student",), "max_token", "student.max_token", "max_tokens"),
    (("curate", "near_dedupe"), "ngrams", "curate.near_dedupe.ngrams", "ngram"),
    (("curate", "decontaminate"), "ngramm", "curate.decontaminate.ngramm", "ngram"),
    (("curate", "balance"), "target_totl", "curate.balance.target_totl", "target_total"),
    (("executor",), "taks", "executor.taks", "tasks"),
    (("generate", "teachers", 0), "sampels", r"generate.teachers\[0=r1\].sampels", "samples"),
    (("responses",), "keep_verfy", "responses.keep_verfy", "keep_verify"),
    (("variants",), "sumarizer", "variants.sumarizer", "summarizer"),
    (("quality",), "blockng", "quality.blockng", "blocking"),
    (("release",), "pretty_nme", "release.pretty_nme", "pretty_name"),
]


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    # Relative paths would not resolve from here; every case fails at validation, before any is read.
    f = tmp_path / "recipe.yaml"
    f.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return f


@pytest.mark.parametrize(("path", "bad", "where", "suggest"), CASES, ids=[c[1] for c in CASES])
def test_typo_names_key_path_and_suggestion(tmp_path: Path, path: tuple[Any, ...], bad: str, where: str, suggest: str) -> None:
    f = _write(tmp_path, _typo(path, bad))
    with pytest.raises(UserError) as e:
        load_recipe(f)
    msg = str(e.value)
    assert "\n" not in msg
    assert re.search(rf"{f}: {where}: unknown key; did you mean `{suggest}`\?", msg), msg


@pytest.mark.parametrize("case", [CASES[0], CASES[7], CASES[9]], ids=["top", "generate", "variants"])
def test_build_stops_before_writing_anything(tmp_path: Path, case: tuple[Any, ...]) -> None:
    path, bad, where, suggest = case
    f = _write(tmp_path, _typo(path, bad))
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "build", str(f), "--work", str(work)],
                          capture_output=True, text=True, timeout=120, env={"COLUMNS": "400", "PATH": ""})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"did you mean `{suggest}`" in lines[0] and "Traceback" not in proc.stderr
    assert not work.exists()


def test_unknown_variant_name_stops_build(tmp_path: Path) -> None:
    data = copy.deepcopy(SAMPLE)
    data.setdefault("variants", {})["build"] = ["answer", "think_sumary"]
    f = _write(tmp_path, data)
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "build", str(f), "--work", str(work)],
                          capture_output=True, text=True, timeout=120, env={"COLUMNS": "400", "PATH": ""})  # fmt: skip
    assert proc.returncode == 2 and "think_sumary" in proc.stderr and not work.exists()


def test_far_off_key_lists_the_valid_keys(tmp_path: Path) -> None:
    f = _write(tmp_path, _typo(("student",), "zzz"))
    with pytest.raises(UserError, match=r"student.zzz: unknown key; valid keys here: max_tokens, tokenizer"):
        load_recipe(f)


@pytest.mark.parametrize(("text", "match"), [
    ("language: no", r"sources\[0=s\].language: YAML read this as bool False; put the value in quotes"),
    ("name: 2024-01-01", r"sources\[0\].name: YAML read this as date 2024-01-01; put the value in quotes"),
    ("name: 123", r"sources\[0=123\].name: YAML read this as int 123; put the value in quotes"),
], ids=["norway", "date", "int-name"])  # fmt: skip
def test_yaml_scalars_that_are_not_text_say_to_quote_them(tmp_path: Path, text: str, match: str) -> None:
    """YAML 1.1 reads `no` as false and 2024-01-01 as a date: "Input should be a valid string"
    did not say why or what to do; a source named 123 crashed the key-path renderer (TypeError)."""
    source = "{name: s, path: a.jsonl, fields: {prompt: q}, " + text + "}" if text.startswith("language") else \
        "{" + text + ", path: a.jsonl, fields: {prompt: q}}"
    f = tmp_path / "recipe.yaml"
    f.write_text(f"name: x\nversion: 0.1.0\nsources:\n - {source}\n")
    with pytest.raises(UserError, match=match):
        load_recipe(f)


@pytest.mark.parametrize("key", ["sha256", "path"])
def test_the_loaders_own_fields_are_not_recipe_keys(tmp_path: Path, key: str) -> None:
    """`sha256:` / `path:` at the top were accepted and then overwritten by the loader (a key
    silently ignored), and the list of valid keys offered them."""
    with pytest.raises(UserError, match=rf"recipe.yaml: {key}: unknown key; valid keys here: curate, description, ") as e:
        load_recipe(_write(tmp_path, _typo((), key, "x")))
    assert "sha256," not in str(e.value) and " path," not in str(e.value)
    with pytest.raises(UserError, match=r"valid keys here: curate, description, executor, generate, name, quality, "
                                        r"release, responses, sources, student, variants, version$"):
        load_recipe(_write(tmp_path, _typo((), "zzz_unknown", 1)))


@pytest.mark.parametrize(
    ("path", "key", "value", "match"),
    [
        (("curate", "decontaminate"), "ngram", 0, "curate.decontaminate.ngram"),
        (("curate", "balance"), "target_total", -5, "curate.balance.target_total"),
        (("curate", "normalize"), "max_prompt_chars", -1, "curate.normalize.max_prompt_chars"),
        (("generate", "teachers", 0, "limits"), "concurrency", 10**9, r"limits.concurrency"),
        (("generate", "teachers", 0, "sampling"), "max_tokens", 10**20, r"sampling.max_tokens"),
        (("student",), "max_tokens", 0, "student.max_tokens"),
        # Past 64 bits, or outside numpy's seed range: a traceback mid-curate, not a load error.
        (("sources", 0), "priority", 10**40, r"sources\[0=r1-mmlupro-pcmb\].priority: 1000\d+ does not fit in 64 bits"),
        (("curate", "balance"), "seed", 2**64, r"curate.balance.seed: \d+ does not fit in 64 bits"),
        (("curate", "near_dedupe"), "seed", -1, r"curate.near_dedupe.seed: Input should be greater than or equal to 0"),
        (("executor",), "mem_per_cpu_gb", float("inf"), r"executor.mem_per_cpu_gb: Input should be a finite number"),
        (("generate", "prices", "deepseek-chat"), "input_per_1m", float("nan"), r"input_per_1m: .*finite number"),
        # Names: ".." would put a teacher's store outside its folder; a blank name labels nothing.
        (("generate", "teachers", 0), "name", "..", r"teacher name '..': use letters"),
        ((), "name", " ", r"recipe.yaml: name: is empty"),
        (("sources", 1), "name", "", r"sources\[1\].name: is empty"),
        # The other kind's keys were ignored without a word (a source meant as hf without `kind: hf`).
        (("sources", 0), "dataset", "openai/gsm8k", r"sources\[0=r1-mmlupro-pcmb\]: `dataset` is not read for kind: local"),
        (("sources", 0), "revision", "main", r"`revision` is not read for kind: local"),
        (("generate", "teachers", 0), "endpoints", [{"base_url": "http://localhost:8000/v1", "api_key_env": "K"}],
         r"generate.teachers\[0=r1\]: `endpoints` belongs to kind: openai"),
        # Rows carry it: the card dropped "english"; the release language gate failed every "en" answer.
        (("sources", 0), "language", "english", r"sources\[0=r1-mmlupro-pcmb\]: language 'english' is not an ISO 639 code"),
    ],
)
def test_values_out_of_range_are_refused(tmp_path: Path, path: tuple[Any, ...], key: str, value: Any, match: str) -> None:
    f = _write(tmp_path, _typo(path, key, value))
    with pytest.raises(UserError, match=match):
        load_recipe(f)


@pytest.mark.parametrize(
    ("path", "key", "value", "match"),
    [
        (("curate", "balance"), "source_caps", {"arena-hard": 30},
         r"curate.balance.source_caps: unknown source 'arena-hard'; did you mean `arena-hard-v2`\?"),
        (("curate", "balance"), "source_weights", {"nope": 2}, r"curate.balance.source_weights: unknown source 'nope'"),
        (("quality", "mix"), "source_targets", {"gsm8k": 0.5}, r"quality.mix.source_targets: unknown source 'gsm8k'"),
        (("quality", "mix"), "category_targets", {"maths": 0.5}, r"quality.mix.category_targets: unknown category"),
        (("quality",), "verification_floor", {"*": 0.5, "coding": 0.9}, r"quality.verification_floor: unknown category"),
        (("quality",), "verification_floor", {"*": 50}, r"quality.verification_floor: shares are between 0 and 1"),
        (("quality", "mix"), "category_targets", {"math": 30}, r"quality.mix.category_targets: shares are between 0 and 1"),
        (("quality", "mix"), "source_targets", {"gsm8k-train": -0.1},
         r"quality.mix.source_targets: shares are between 0 and 1"),
        # "maths" sent math prompts the default template (no boxed-answer suffix), paid for.
        (("generate",), "templates", {"default": "r1-system", "maths": "r1-math"}, r"generate.templates: unknown category"),
        (("generate", "teachers", 0), "templates", {"cod": "r1-code"}, r"generate.teachers\[0=r1\].templates: unknown"),
        # "passed" matched no status: the adaptive variant gave no row a summary.
        (("variants", "adaptive"), "summary_verify", ["passed"], r"variants.adaptive.summary_verify\[0\]: Input should be"),
    ],
    ids=["source-cap", "source-weight", "source-target", "category-target", "floor-category", "floor-percent",
         "category-target-percent", "source-target-negative", "template-category", "teacher-template-category", "summary-verify-status"],
)
def test_names_that_would_match_nothing_are_refused(tmp_path: Path, path: tuple[Any, ...], key: str, value: Any,
                                                    match: str) -> None:  # fmt: skip
    """A misspelt source or category in a cap, weight, target or floor would silently cap or check nothing."""
    with pytest.raises(UserError, match=match):
        load_recipe(_write(tmp_path, _typo(path, key, value)))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: x\n" + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i-1}'] * 9) if i else '1'}]\n" for i in range(12)),
         "aliases"),
        ("name: x\nv: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply|not valid YAML"),
        ("name: x\nv: [" + ", ".join(["1"] * 400_000) + "]\n", "bytes is not a recipe"),
        ("a: &a [1,2,3,4,5,6,7,8,9,10]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", "values once aliases are expanded"),
        # A second `curate:` (or a nested key given twice) must not silently replace the first.
        ("name: x\nversion: 0.1.0\ncurate: {balance: {seed: 1}}\nsources: []\ncurate: {}\n",
         r"r.yaml:5: .*key 'curate' is given twice \(also on line 3\)"),
        ("name: x\nsources:\n - {name: s, path: a.jsonl, fields: {prompt: q, prompt: r}}\n",
         r"r.yaml:3: .*key 'prompt' is given twice"),
    ],
    ids=["alias-bomb", "deep-nesting", "huge", "expansion", "duplicate-key", "duplicate-nested-key"],
)
def test_hostile_yaml_is_one_line(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=match) as e:
        load_recipe(f)
    assert "\n" not in str(e.value)


def test_checking_a_recipe_does_not_import_the_data_stack() -> None:
    """A typo is reported in the time it takes to read the recipe: the CLI's check path must not
    pull in `datasets`/pyarrow (a second or more) before it can say what is wrong."""
    code = ("import sys; from pathlib import Path; from builder.cli import load; "
            f"load(Path({str(ROOT / 'recipes/sample.yaml')!r})); "
            "print(sorted(m for m in ('datasets', 'pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("where", "value", "match"),
    [
        (("generate", "teachers", 0, "sources"), {"include": ["r1-mmlupro-pcbm"]},
         r"generate.teachers\[0=r1\].sources.include: unknown source 'r1-mmlupro-pcbm'; did you mean `r1-mmlupro-pcmb`\?"),
        (("generate", "teachers", 1, "sources"), {"exclude": ["nothing-like-it"]},
         r"generate.teachers\[1=control\].sources.exclude: unknown source 'nothing-like-it'; use one of \["),
        (("generate", "precedence"), ["verified_pass", "teacher_ordr"], r"generate.precedence\[1\]: Input should be .verified_pass., .finish_stop., .teacher_order. or .sample_index."),
        (("generate", "teachers", 0, "mode"), "fallback", r"teacher r1: mode fallback needs an earlier reasoning teacher"),
    ],
    ids=["include", "exclude", "precedence", "fallback-first"],
)
def test_bad_teacher_selection_is_one_line_exit_2(tmp_path: Path, where: tuple[Any, ...], value: Any, match: str) -> None:
    data = copy.deepcopy(SAMPLE)
    node = data
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    f = tmp_path / "recipes" / "recipe.yaml"  # beside the sample's data, as sample.yaml is
    f.parent.mkdir()
    f.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    work = tmp_path / "work"
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "build", str(f), "--work", str(work)],
                          capture_output=True, text=True, timeout=120, env={"COLUMNS": "400", "PATH": ""})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and re.search(match, lines[0]), proc.stderr
    assert "Traceback" not in proc.stderr and not work.exists()


def test_summarizer_refuses_generate_only_teacher_knobs(tmp_path: Path) -> None:
    data = copy.deepcopy(SAMPLE)
    data["variants"] = {"summarizer": {"kind": "llm", "teacher": {"kind": "vllm", "model": "Qwen/Qwen2.5-7B-Instruct",
                                                                  "mode": "fallback"}}}  # fmt: skip
    with pytest.raises(UserError, match=r"variants.summarizer.teacher: mode and sources choose generate's prompts"):
        load_recipe(_write(tmp_path, data))


def test_a_misspelt_reject_info_code_is_refused(tmp_path: Path) -> None:
    """`responses.reject_info` names info codes a reply may carry: a misspelt one quarantined
    nothing, and the build that was meant to be strict was not."""
    from builder.cli import load

    with pytest.raises(UserError, match=r"responses.reject_info: unknown info code\(s\) \['answer_tag_absent'\]; "
                                        r"known: \['answer_tags_absent', "):
        load(_write(tmp_path, _typo(("responses",), "reject_info", ["answer_tag_absent"])))
    data = _typo(("responses",), "reject_info", ["answer_tags_absent"])
    for s in data["sources"]:  # the sample's data, as a real recipe beside it would name it
        s["path"] = str(ROOT / "recipes" / s["path"])
    assert load(_write(tmp_path, data)).responses.reject_info == ["answer_tags_absent"]
