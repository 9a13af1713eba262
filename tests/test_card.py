"""The dataset card: Hub metadata that passes the card rules, a default config that
`load_dataset(folder)` picks, column descriptions, example rows, one prompt three ways,
honest quality gates, decontamination coverage, citations and the repo id; and the bad
inputs around it (a template naming an unknown field, a repo id that is not org/name).

One release is built for the module from the release-test work dir (real R1 traces and
Alpaca rows), with a category target the rows miss, so an advisory check fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from builder.errors import UserError
from builder.recipe import load_recipe
from builder.release import card, columns, context
from builder.release.manifest import card_metadata
from builder.release.stage import run_release
from builder.rows import PAIR_FEATURES, VARIANT_FEATURES
from tests.test_release_helpers import build_work, recipe_text

ROOT = Path(__file__).resolve().parents[1]
MISSED_TARGET = "  mix: {tolerance: 0.2, category_targets: {chat: 0.5, math: 0.5}}"


def _recipe(path: Path, version: str = "0.1.0", repo: str | None = "test-org/answer-distill-sample",
            extra: str = "") -> Path:
    text = recipe_text(version).replace("  mix: {tolerance: 0.2}", MISSED_TARGET)
    text = text.replace("  repo_id: test-org/answer-distill-sample\n", f"  repo_id: {repo}\n" if repo else "")
    path.write_text(text + extra)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("card")
    work = build_work(base / "work")
    recipe = load_recipe(_recipe(base / "recipe.yaml"))
    seen: dict[str, Any] = {}
    real = card.render

    def capture(ctx: dict[str, Any], template: Path = card.TEMPLATE) -> str:
        seen.update(ctx)
        return real(ctx, template)

    mp = pytest.MonkeyPatch()
    mp.setattr(card, "render", capture)
    try:
        res = run_release(recipe, work, base / "v0.1.0")
    finally:
        mp.undo()
    return {"dir": base / "v0.1.0", "ctx": seen, "result": res, "base": base, "work": work}


def test_every_published_column_is_described() -> None:
    assert columns.undescribed(VARIANT_FEATURES) == []
    assert columns.undescribed(PAIR_FEATURES) == []  # the `pairs` config's own table
    rows = columns.table(VARIANT_FEATURES)
    assert [r["name"] for r in rows] == list(VARIANT_FEATURES)
    assert {r["type"] for r in rows} >= {"string", "int32", "list<{role, content, tool_calls}>", "list<string>"}


def test_card_fields_are_exactly_what_the_release_provides(built: dict[str, Any]) -> None:
    assert set(built["ctx"]) == set(context.CARD_FIELDS)


def test_card_metadata_passes_the_hub_rules(built: dict[str, Any]) -> None:
    from huggingface_hub import DatasetCard

    text = (built["dir"] / "README.md").read_text()
    assert card.problems(text) == []
    data = DatasetCard(text).data.to_dict()
    assert data["license"] == "other"  # alpaca-zh is CC BY-NC
    assert data["license_name"] == "release-fixture-source-licenses"
    assert data["license_link"] == "LICENSE.md" and (built["dir"] / "LICENSE.md").is_file()
    assert "alpaca-zh | cc-by-nc-4.0" in (built["dir"] / "LICENSE.md").read_text()
    assert data["annotations_creators"] == ["machine-generated"]
    assert sorted(data["language"]) == ["en", "zh"]
    assert data["task_categories"] == ["text-generation"] and data["size_categories"] == ["n<1K"]
    assert data["source_datasets"] == ["original"]  # the fixture's sources are local files only
    defaults = [c["config_name"] for c in data["configs"] if c.get("default")]
    assert defaults == ["answer"]
    assert {i["config_name"] for i in data["dataset_info"]} == {c["config_name"] for c in data["configs"]}


@pytest.mark.parametrize("edit, expect", [
    (lambda m: m.pop("license_name"), "license `other` needs a `license_name`"),
    (lambda m: m.pop("license_link"), "license `other` needs a `license_link`"),
    (lambda m: m.update(license="Apache 2"), "license 'Apache 2' is not a Hub license id"),
    (lambda m: m.update(language=["en", "Chinese"]), "language 'Chinese' is not an ISO 639 code"),
    (lambda m: m.update(annotations_creators=["robots"]), "annotations_creators 'robots' is not one of"),
    (lambda m: m.update(source_datasets=["gsm8k"]), "source_datasets entry 'gsm8k' is not original"),
    (lambda m: [c.pop("default", None) for c in m["configs"]], "0 configs marked `default: true`"),
    (lambda m: m["dataset_info"].pop(), "has no `dataset_info` entry"),
])
def test_card_rules_catch_each_broken_field(built: dict[str, Any], edit: Any, expect: str) -> None:
    readme = built["dir"] / "README.md"
    meta = card_metadata(readme)
    edit(meta)
    body = readme.read_text().split("\n---", 1)[1]
    problems = card.problems("---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---" + body)
    assert any(expect in p for p in problems), problems


def test_load_dataset_without_a_config_name_loads_answer(built: dict[str, Any], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    ds = datasets.load_dataset(str(built["dir"]), cache_dir=str(tmp_path / "cache"))["train"]
    manifest = json.loads((built["dir"] / "manifest.json").read_text())
    assert set(ds["variant"]) == {"answer"}
    assert ds.num_rows == manifest["configs"]["answer"]["num_examples"]


def test_a_failed_check_is_printed_as_failed(built: dict[str, Any]) -> None:
    body = (built["dir"] / "README.md").read_text()
    quality = json.loads((built["dir"] / "quality.json").read_text())
    failed = [c for c in quality["checks"] if not c["success"]]
    assert [(c["variant"], c["check"], c["blocking"]) for c in failed] == [("answer", "category_mix", False)]
    assert "| answer | category_mix | no | **fail** |" in body
    assert "Every config passed every check" not in body
    assert "**1 advisory check(s) failed**" in body and "`answer` category_mix" in body


def test_body_sections(built: dict[str, Any]) -> None:
    body = (built["dir"] / "README.md").read_text()
    for heading in ("## One prompt, three ways", "## Columns", "### Example rows", "### Decontamination coverage",
                    "### Rejection funnel", "### Cost", "## Uses", "## Out-of-scope uses",
                    "## Bias, risks and limitations", "## License", "## Citation"):
        assert f"\n{heading}\n" in body, heading
    for name, desc in columns.DESCRIPTIONS.items():
        if name in VARIANT_FEATURES:
            assert f"| `{name}` |" in body and desc in body, name
    for v in ("answer", "original", "think_summary", "full", "control"):
        assert f"<summary><code>{v}</code></summary>" in body
    # Decontamination coverage names the benchmark whose files were absent.
    assert "**Not checked:** `gpqa_diamond`" in body
    # The funnel is the variants ledger: original dropped prompts without a community response.
    assert "| variants | original | 80 | 20 | 60 | no_original_response 60 |" in body
    assert "Cost per kept row (USD): `answer` 0.015625" in body
    # The paper with its authors, and a citation for the dataset naming the real repo.
    assert "author        = {Haotian Wang and Han Zhao" in body and "eprint        = {2504.09639}" in body
    assert "howpublished = {\\url{https://huggingface.co/datasets/test-org/answer-distill-sample}}" in body
    assert 'load_dataset("test-org/answer-distill-sample", "answer", revision="v0.1.0")' in body
    assert "YOUR-ORG" not in body and "<org>" not in body


def test_one_prompt_three_ways(built: dict[str, Any]) -> None:
    tw = built["ctx"]["three_ways"]
    assert tw["shared"] == 20 and set(tw["replies"]) == {"original", "answer", "think_summary"}
    body = (built["dir"] / "README.md").read_text()
    assert f"`prompt_id` `{tw['prompt_id']}`" in body
    # The same prompt's rows in each config: the card's texts are theirs (truncated).
    import pyarrow.parquet as pq

    for config, shown in tw["replies"].items():
        rows = [r for f in sorted((built["dir"] / "data" / config).glob("*.parquet"))
                for r in pq.read_table(f).to_pylist() if r["prompt_id"] == tw["prompt_id"]]
        assert len(rows) == 1
        assert rows[0]["messages"][-1]["content"].strip().startswith(shown.split(" … [")[0])


def test_no_shared_prompt_is_said(tmp_path: Path) -> None:
    from builder.release.card_data import three_ways

    (tmp_path / "data" / "answer").mkdir(parents=True)
    tw = three_ways(tmp_path)
    assert tw == {"shared": 0, "configs": []}
    ctx = {k: None for k in context.CARD_FIELDS}
    src = "{% if three_ways.shared %}x{% else %}NONE{% endif %}"
    (tmp_path / "t.md").write_text(src)
    assert card.render({**ctx, "three_ways": tw}, tmp_path / "t.md") == "NONE"
    assert "No prompt of this release is in all three" in card.TEMPLATE.read_text()


def test_without_a_repo_id_the_card_marks_a_placeholder_and_warns(built: dict[str, Any]) -> None:
    recipe = load_recipe(_recipe(built["base"] / "norepo.yaml", repo=None))
    repo, placeholder = context.repo_id(recipe)
    assert placeholder and repo == "YOUR-ORG/release-fixture"
    template = (ROOT / "dataset_card.md").read_text()
    assert "{% if repo_placeholder %}" in template and "**Placeholder.**" in template


# ---- bad input: a card template naming an unknown field; a repo id that is not org/name ----

def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "builder.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    return errors[0]


def test_a_card_template_with_an_unknown_field_is_one_line_and_writes_nothing(built: dict[str, Any]) -> None:
    base = built["base"]
    (base / "card.md").write_text("---\n{{ front_matter }}---\n# {{ pretty_name }}\n\nRows: {{ total_rows }}\n"
                                  "Made by {{ maintainer_email }}.\n")
    recipe = _recipe(base / "bad-template.yaml", version="0.9.0", extra="  card_template: card.md\n")
    out = base / "v0.9.0"
    line = _one_line(_cli("release", recipe, "--work", built["work"].root, "--out", out))
    assert f"{base / 'card.md'}: line 6: unknown field 'maintainer_email'; the card's fields are:" in line
    assert not out.exists() and not list(base.glob(".*tmp*"))


def test_a_misspelt_field_gets_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "t.md").write_text("{{ pretty_name }}\n{% for v in variant %}{{ v }}{% endfor %}\n")
    with pytest.raises(UserError, match=r"t.md: line 2: unknown field 'variant'; did you mean 'variants'\? "):
        card.check_fields(tmp_path / "t.md", context.CARD_FIELDS)


def test_card_template_syntax_error_and_missing_file_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("ok\n{% for x in %}\n")
    with pytest.raises(UserError, match=r"bad.md: line 2: not a valid card template"):
        card.check_fields(bad, context.CARD_FIELDS)
    with pytest.raises(UserError, match=r"cannot read the card template"):
        card.check_fields(tmp_path / "absent.md", context.CARD_FIELDS)
    latin = tmp_path / "latin.md"  # Latin-1 (an editor's default): was a UnicodeDecodeError, "internal error"
    latin.write_bytes("Caf\u00e9 {{ pretty_name }}\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin.md: byte 3 is not UTF-8; save the card template as UTF-8"):
        card.check_fields(latin, context.CARD_FIELDS)


@pytest.mark.parametrize("repo", ["answer-distill", "org/name/extra", "org/na me", "org--x/name"])
def test_release_refuses_a_repo_id_that_is_not_org_name(built: dict[str, Any], repo: str) -> None:
    out = built["base"] / "never"
    line = _one_line(_cli("release", built["base"] / "recipe.yaml", "--work", built["work"].root,
                          "--out", out, "--repo", repo))
    assert "is not a Hub dataset id; pass --repo org/name" in line
    assert not out.exists()


def test_recipe_repo_id_and_card_metadata_knobs_are_checked_at_load(tmp_path: Path) -> None:
    for key, value, expect in (("repo_id", "just-a-name", "is not a Hub dataset id"),
                               ("task_categories", "[chat-bot]", "are not Hub task categories"),
                               ("license", "Apache 2", "is not a Hub license id"),
                               ("language", "[english]", "are not ISO 639 codes")):
        path = tmp_path / f"{key}.yaml"
        path.write_text(recipe_text().replace("  repo_id: test-org/answer-distill-sample\n", f"  {key}: {value}\n"))
        with pytest.raises(UserError, match=rf"release\.{key}.*{expect}"):
            load_recipe(path)


def test_source_datasets_name_hub_sources_only(tmp_path: Path) -> None:
    extra = recipe_text().replace("  - name: alpaca-zh\n", (
        "  - name: gsm8k-hub\n    kind: hf\n    dataset: openai/gsm8k\n    config: main\n"
        "    fields: {prompt: question, response: answer}\n    license: mit\n"
        "  - name: alpaca-zh\n    origin_dataset: llamafactory/alpaca_zh\n"))
    assert "gsm8k-hub" in extra
    path = tmp_path / "r.yaml"
    path.write_text(extra)
    recipe = load_recipe(path)
    got = context.source_datasets(recipe, ["gsm8k-hub", "alpaca-zh", "r1-mmlupro-pcmb"])
    assert got == ["extended|llamafactory/alpaca_zh", "extended|openai/gsm8k"]
    assert context.source_datasets(recipe, ["r1-mmlupro-pcmb"]) == ["original"]
    assert context.source_link("openai/gsm8k") == "https://huggingface.co/datasets/openai/gsm8k"
    path.write_text(extra.replace("origin_dataset: llamafactory/alpaca_zh", "origin_dataset: alpaca_zh"))
    with pytest.raises(UserError, match=r"origin_dataset 'alpaca_zh' is not a Hub id"):
        load_recipe(path)


def test_recipe_languages_add_to_the_rows_never_hide_them(tmp_path: Path) -> None:
    from collections import Counter

    from quality.stats import VariantStats

    path = tmp_path / "r.yaml"
    path.write_text(recipe_text().replace("release:\n", "release:\n  language: [en, fr]\n"))
    stats = {"answer": VariantStats(by_language=Counter({"zh": 3, "en+bn": 2, "unknown": 1}))}
    assert context.languages(load_recipe(path), stats) == ["bn", "en", "fr", "zh"]


def test_release_repo_option_sets_the_repo_id_and_changes_the_fingerprint(built: dict[str, Any]) -> None:
    from builder.cli import _with_repo
    from builder.release.stage import fingerprint

    recipe = load_recipe(built["base"] / "recipe.yaml")
    other = _with_repo(recipe, "other-org/elsewhere")
    assert other.release.repo_id == "other-org/elsewhere" and recipe.release.repo_id == "test-org/answer-distill-sample"
    assert other.path == recipe.path and other.sha256 == recipe.sha256  # still the recipe file it was loaded from
    assert fingerprint(other, built["work"]) != fingerprint(recipe, built["work"])
    assert _with_repo(recipe, None) is recipe


def test_the_card_shows_the_self_checks_of_the_sample(sample_release: Path) -> None:
    """Issue-14 figures reach the reader: summary quality, think–answer consistency per source and
    teacher, format survival, the thinking-length histogram; the same numbers as quality.json."""
    card_text = (sample_release / "README.md").read_text()
    section = card_text.split("## Self-checks", 1)[1].split("\n## ", 1)[0]
    quality = json.loads((sample_release / "quality.json").read_text())
    assert quality["consistency"], "the responses stage's consistency tally is in quality.json"
    for key, c in quality["consistency"].items():
        source, teacher = key.split(" | ", 1)
        assert f"| {source} | {teacher} | {c.get('match', 0):,} | {c.get('mismatch', 0):,} |" in section
    assert "**Summaries** (the " in section and " `think_summary` rows with a summary" in section
    assert "| `think_summary` | all |" in section  # the sample has a constraint-bearing prompt
    hist = quality["overthinking"]["histogram"]
    assert sum(hist.values()) > 0 and f"-1..0   {hist['-1..0']:6d}" in section


def test_consistency_names_the_model_the_published_rows_name(sample_release: Path) -> None:
    """The think–answer consistency table's "teacher" is the model that wrote the replies, as the
    rows' `teacher_model` says, and only reasoning replies are in it: the sample's Marco-o1 CoT
    replies were tallied under "deepseek-ai/DeepSeek-R1" (the import's teacher entry), deepseek-reasoner's
    under it too, and the o3-mini control replies, which have no thinking, were listed as well."""
    import pyarrow.parquet as pq

    quality = json.loads((sample_release / "quality.json").read_text())
    keys = {tuple(k.split(" | ", 1)) for k in quality["consistency"]}
    published = {(r["source"], r["teacher_model"]) for f in sorted((sample_release / "data" / "full").glob("*.parquet"))
                 for r in pq.read_table(f, columns=["source", "teacher_model"]).to_pylist()}  # fmt: skip
    assert keys == published
    assert ("marco-o1-cot", "AIDC-AI/Marco-o1") in keys and not any(s == "arena-hard-v2" for s, _ in keys)


def test_a_pipe_or_line_break_in_an_attribution_keeps_the_sources_table_whole(tmp_path: Path) -> None:
    """Attributions are free text from the recipe (a `|`, or the line break YAML's `>` leaves at
    the end): written into the Sources table as they were, one split the row and pushed every
    per-config count into the wrong column or out of the table."""
    import re

    import pyarrow.parquet as pq

    work = build_work(tmp_path / "work", n_en=8, n_zh=4)
    text = recipe_text().replace('attribution: "hiyouga/LLaMA-Factory alpaca_zh_demo (CC BY-NC 4.0)"',
                                 'attribution: "hiyouga/LLaMA-Factory | alpaca_zh_demo\\n(CC BY-NC 4.0)\\n"')
    (tmp_path / "r.yaml").write_text(text)
    out = tmp_path / "out"
    run_release(load_recipe(tmp_path / "r.yaml"), work, out)
    section = (out / "README.md").read_text().split("Rows per source and config:", 1)[1].split("\n\n", 2)[1]
    header, _, *rows = section.splitlines()
    configs = re.findall(r"`(\w+)`", header)
    assert len(rows) == 2 and configs
    for line in rows:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 4 + len(configs), line
        counts = {c: sum(1 for f in (out / "data" / c).glob("*.parquet")
                         for s in pq.read_table(f, columns=["source"]).column("source").to_pylist() if s == cells[0])
                  for c in configs}  # fmt: skip
        assert [int(n.replace(",", "")) for n in cells[4:]] == [counts[c] for c in configs], line
    assert r"hiyouga/LLaMA-Factory \| alpaca_zh_demo (CC BY-NC 4.0)" in section
    # LICENSE.md's table too (the release is `other`: a non-commercial source).
    assert r"| alpaca-zh | cc-by-nc-4.0 | hiyouga/LLaMA-Factory \| alpaca_zh_demo (CC BY-NC 4.0) |" in \
        (out / "LICENSE.md").read_text().splitlines()


def test_teacher_token_columns_say_how_they_were_counted(sample_release: Path) -> None:
    """The sample's replies are imports with no usage report: their teacher token counts are the
    teacher tokenizer's (DeepSeek-R1's), and the card said "from the teacher's usage report"."""
    import pyarrow.parquet as pq

    from builder.tokens import count_tokens

    work = sample_release.parent
    replies = pq.read_table(work / "generate" / "replies", columns=["generation_id", "reasoning_tokens"]).to_pylist()
    assert all(r["reasoning_tokens"] is None for r in replies)  # no usage report to read them off
    parsed = [p for p in pq.read_table(work / "responses" / "parsed").to_pylist() if p["teacher_role"] == "reasoning"]
    assert [p["teacher_think_tokens"] for p in parsed] == count_tokens("deepseek-r1", [p["think"] for p in parsed])
    card_text = (sample_release / "README.md").read_text()
    row = next(line for line in card_text.splitlines() if line.startswith("| `teacher_think_tokens` |"))
    assert "else counted with the teacher tokenizer" in row and "from the teacher's usage report |" not in row
    assert "teacher counts from the teacher's usage report where it gives\nthem, else counted" in card_text


def test_the_terms_of_model_outputs_name_every_model_that_wrote_rows(sample_release: Path) -> None:
    """The License section named DeepSeek-R1 alone ("DeepSeek-R1 is released under MIT") over
    rows written by Marco-o1, deepseek-reasoner and o3-mini (the control config, OpenAI's terms)."""
    import pyarrow.parquet as pq

    models = {m for f in (sample_release / "data").glob("*/*.parquet")
              for m in pq.read_table(f, columns=["teacher_model"]).column("teacher_model").to_pylist() if m}  # fmt: skip
    assert {"o3-mini-2025-01-31", "AIDC-AI/Marco-o1"} <= models
    card_text = (sample_release / "README.md").read_text()
    license_md = (sample_release / "LICENSE.md").read_text()
    for m in models:
        assert f"`{m}`" in card_text.split("## License", 1)[1].split("Attributions:", 1)[0], m
        assert f"`{m}`" in license_md, m
    from builder.release.licenses import teacher_terms

    assert teacher_terms([]) == ""  # a release of community responses only says nothing about model outputs


def test_the_summary_figures_are_the_published_rows(sample_release: Path) -> None:
    """The card's summary figures were the variants stage's tally of every summary scored, the
    ones its checks then left out included (sample: 307 scored, 305 rows; 'repeated sentences
    0.1%', '189 summaries', 'faithfulness 99.7%' where the rows say 0.0%, 187 and 100.0%): now
    they are the published rows' own columns, and the left-out summaries are counted apart."""
    import pyarrow.parquet as pq

    rows = [r for f in sorted((sample_release / "data" / "think_summary").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist() if r["faithfulness_score"] is not None]  # fmt: skip
    n = len(rows)
    covered = [r["summary_final_covered"] for r in rows if r["summary_final_covered"] is not None]

    def pct(v: float) -> str:
        return f"{100 * v:.1f}%"

    quality = json.loads((sample_release / "quality.json").read_text())
    left_out = quality["summary_quality"]["scored"] - n
    section = " ".join((sample_release / "README.md").read_text().split("**Summaries**", 1)[1].split("\n\n", 1)[0].split())
    assert section.startswith(f"(the {n:,} `think_summary` rows with a summary; {left_out:,} more summaries were scored")
    assert left_out == 2
    assert f"repeated sentences {pct(sum(r['summary_repetition'] for r in rows) / n)}" in section
    assert f"fragment sentences {pct(sum(r['summary_fragment_rate'] for r in rows) / n)}" in section
    assert f"stated in {pct(sum(covered) / len(covered))} of the {len(covered):,} summaries" in section
    assert f"or prompt) {pct(sum(r['faithfulness_score'] for r in rows) / n)}." in section


def test_a_benchmark_given_as_several_files_is_listed_once(sample_release: Path) -> None:
    # The sample recipe gives aime25 as two files (parts I and II; present with the shared corpus).
    listed = json.loads((sample_release / "manifest.json").read_text())["decontamination"]["benchmarks"]
    assert listed and len(listed) == len(set(listed)), listed


def test_the_card_names_the_decontamination_methods_that_ran(sample_release: Path) -> None:
    """The card said "n-gram and fuzzy match" whatever ran: the multiple-choice rule (the sample's
    MMLU has choice_fields) or the embedding pass went unsaid, a rule switched off still claimed."""
    from builder.config.curate import DecontamConfig
    from builder.curate.decontam import methods_run

    card_text = (sample_release / "README.md").read_text()
    assert ("were removed (methods: word 8-gram overlap; fuzzy match at score 90; multiple-choice items with their "
            "choices in any order):") in card_text  # fmt: skip
    cfg = DecontamConfig.model_validate({"ngram": 13, "benchmarks": [
        {"name": "mmlu", "path": "m.jsonl", "text_fields": ["question"], "choice_fields": ["choices"]}]})  # fmt: skip
    assert methods_run(cfg, ["mmlu"])[-1] == "multiple-choice items with their choices in any order"
    assert methods_run(cfg, [])[0] == "word 13-gram overlap" and len(methods_run(cfg, [])) == 2  # mmlu absent
    cfg.semantic.enabled = True
    assert methods_run(cfg, [])[-1].startswith("all-MiniLM-L6-v2 sentence embeddings at cosine 0.85")
