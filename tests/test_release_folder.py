"""The release folder: layout, card, manifest, offline load_dataset, tamper detection, refusals."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builder.errors import UserError
from builder.recipe import load_recipe
from builder.release.folder import is_published_schema
from builder.release.manifest import card_metadata, sha256_file, verify_release
from builder.release.stage import run_release
from builder.rows import VARIANT_FEATURES
from builder.variants.registry import to_build
from tests.test_release_helpers import build_work, shared_release, shared_work, write_recipe

VARIANTS = to_build(None)  # the registry's default variants
PLANTED = "hf_plantedTokenValue0123456789"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_TOKEN", PLANTED)  # present in the environment while the release is written
    try:
        return shared_release(tmp_path_factory.mktemp("release"))
    finally:
        mp.undo()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def test_layout_and_shard_names(release: Path) -> None:
    for v in VARIANTS:
        files = sorted((release / "data" / v).iterdir())
        assert files, v
        n = len(files)
        assert [f.name for f in files] == [f"train-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
        for f in files:
            assert is_published_schema(pq.read_schema(f))
    for name in ("README.md", "manifest.json", "quality.json", "CHANGELOG.md", "recipe.yaml",
                 "quality/data_docs/index.html", "quality/data_docs/answer/rows.html", "quality/gx/answer/rows.json",
                 "figures/teacher_tokens.png", "figures/rows_by_source.png"):
        assert (release / name).is_file(), name
    assert not list(release.parent.glob(".*tmp*")), "a temp folder was left behind"
    gx_result = json.loads((release / "quality/gx/full/rows.json").read_text())
    assert gx_result["success"] is True and gx_result["results"]
    assert "<html" in (release / "quality/data_docs/answer/rows.html").read_text().lower()


def test_card_front_matter_and_body(release: Path) -> None:
    meta = card_metadata(release / "README.md")
    assert {c["config_name"] for c in meta["configs"]} == set(VARIANTS)
    assert all(c["data_files"][0]["path"] == f"data/{c['config_name']}/train-*.parquet" for c in meta["configs"])
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    manifest = json.loads((release / "manifest.json").read_text())
    for v in VARIANTS:
        split = infos[v]["splits"][0]
        assert split["num_examples"] == manifest["configs"][v]["num_examples"] > 0
        assert split["num_bytes"] > 0
        assert [f["name"] for f in infos[v]["features"]] == list(VARIANT_FEATURES)
    # alpaca-zh is CC BY-NC: the release must not claim a permissive license.
    assert meta["license"] == "other"
    assert set(meta["language"]) == {"en", "zh"}
    assert meta["size_categories"] == ["n<1K"]
    body = (release / "README.md").read_text()
    assert "alpaca-zh (non-commercial (cc-by-nc-4.0))" in body
    assert "546,526" in body and "1,326,018" in body
    assert "luckyIITR/r1-distill" in body  # attributions listed
    assert 'revision="v0.1.0"' in body
    assert "![teacher tokens](figures/teacher_tokens.png)" in body
    assert "{{" not in body and "{%" not in body


def test_manifest_fields_and_hashes(release: Path) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["version"] == "0.1.0" and manifest["tag"] == "v0.1.0"
    assert manifest["recipe"]["sha256"] == sha256_file(release / "recipe.yaml")
    assert manifest["decontamination"]["benchmarks"] == ["gsm8k", "math500", "mmlu"]
    assert {t["model"] for t in manifest["teachers"]} == {"deepseek-reasoner", "deepseek-chat"}
    assert manifest["seeds"]["curate.balance.seed"] == 3
    assert manifest["prompt_templates"] == ["r1_system_v1:5f1c0ffee"]
    for rel, entry in manifest["files"].items():
        assert sha256_file(release / rel) == entry["sha256"], rel
    assert verify_release(release) == []


def test_quality_json_is_machine_readable(release: Path) -> None:
    q = json.loads((release / "quality.json").read_text())
    assert q["passed"] is True and q["blocking_failures"] == []
    ans = q["variants"]["answer"]
    assert ans["by_source"] == {"alpaca-zh": 20, "r1-mmlupro-pcmb": 60}
    assert ans["verification"]["math"]["pass_rate"] == 1.0
    assert ans["tokens"]["teacher_think_tokens"]["max"] > ans["tokens"]["teacher_answer_tokens"]["max"]
    assert q["rejections"]["ledgers"]["variants"] == {"original:no_original_response": 60}
    assert q["cost_per_kept_row"]["answer"] == pytest.approx(1.25 / 80)
    assert {c["check"] for c in q["checks"] if c["variant"] == "think_summary"} >= {"summary_ends_with_answer", "tag_grammar"}


def test_planted_token_is_in_no_file(release: Path) -> None:
    for p in release.rglob("*"):
        if p.is_file():
            assert PLANTED.encode() not in p.read_bytes(), p


def test_load_dataset_offline_every_config(release: Path, offline: None, tmp_path: Path) -> None:
    import datasets

    manifest = json.loads((release / "manifest.json").read_text())
    for v in VARIANTS:
        ds = datasets.load_dataset(str(release), v, cache_dir=str(tmp_path / "cache"))["train"]
        assert ds.num_rows == manifest["configs"][v]["num_examples"]
        assert ds.features == VARIANT_FEATURES.to_datasets()
        assert set(ds["variant"]) == {v}
    full = datasets.load_dataset(str(release), "full", cache_dir=str(tmp_path / "cache"))["train"]
    assert full[0]["messages"][-1]["content"].startswith("<think>\n")


def test_tampered_num_examples_is_caught(release: Path, offline: None, tmp_path: Path) -> None:
    import datasets
    from datasets.exceptions import NonMatchingSplitsSizesError

    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    readme = copy / "README.md"
    text = readme.read_text()
    n = json.loads((copy / "manifest.json").read_text())["configs"]["answer"]["num_examples"]
    tampered, count = re.subn(rf"(config_name: answer\n(?:.*\n)*?    num_examples: ){n}\n", rf"\g<1>{n + 1}\n", text, count=1)
    assert count == 1
    readme.write_text(tampered)
    problems = verify_release(copy)
    assert any("num_examples" in p for p in problems) and any("sha256" in p for p in problems)
    with pytest.raises(NonMatchingSplitsSizesError):
        datasets.load_dataset(str(copy), "answer", cache_dir=str(tmp_path / "cache"))


def test_changed_or_extra_shard_is_caught(release: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    shard = next((copy / "data" / "control").glob("*.parquet"))
    t = pq.read_table(shard)
    pq.write_table(t.slice(1), shard)
    (copy / "notes.txt").write_text("added later")
    problems = verify_release(copy)
    assert any(p.startswith("data/control/train-") and "sha256" in p for p in problems)
    assert any("data/control:" in p and "rows but the manifest says" in p for p in problems)
    assert "notes.txt: not listed in the manifest" in problems


def test_existing_release_dir_is_refused(release: Path) -> None:
    recipe = load_recipe(release / "recipe.yaml")
    before = sorted(p.name for p in release.parent.iterdir())
    with pytest.raises(UserError, match=r"version 0\.1\.0 is already built there; bump `version`"):
        run_release(recipe, shared_work(), release)
    assert sorted(p.name for p in release.parent.iterdir()) == before


def test_recipe_without_version_is_one_line(tmp_path: Path) -> None:
    path = write_recipe(tmp_path / "r.yaml")
    path.write_text(path.read_text().replace("version: 0.1.0\n", ""))
    with pytest.raises(UserError) as e:
        load_recipe(path)
    assert str(e.value) == f"{path}: version: required key is missing; add it"


def test_recipe_holding_a_secret_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    work = build_work(tmp_path / "work", n_en=4, n_zh=0)
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", extra=f"# token {PLANTED}\n"))
    with pytest.raises(UserError, match="secret environment variable") as e:
        run_release(recipe, work, tmp_path / "out")
    assert PLANTED not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_no_variant_shards_is_one_line(tmp_path: Path) -> None:
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    with pytest.raises(UserError, match="no variant shards found; run `answer-distill variants` first"):
        run_release(recipe, tmp_path / "empty-work", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_release_refusal_is_one_line(release: Path) -> None:
    from typer.testing import CliRunner

    from builder.cli import app

    # The same content again: a no-op, said so.
    res = CliRunner().invoke(app, ["release", str(release / "recipe.yaml"), "--work", str(shared_work()),
                                   "--out", str(release)])
    assert res.exit_code == 0 and "already holds this exact release; nothing to do" in " ".join(res.output.split())
    # Other content under the same version: refused in one line that says to bump it.
    changed = release.parent / f"changed-{release.name}.yaml"
    changed.write_text((release / "recipe.yaml").read_text().replace("\nrelease:\n", "\nrelease:\n  pretty_name: other\n", 1))
    res = CliRunner().invoke(app, ["release", str(changed), "--work", str(shared_work()), "--out", str(release)])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "is already built there" in lines[0] and "bump `version`" in lines[0], res.output


def test_secrets_in_reads_every_file_shards_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    from builder.release.folder import secrets_in

    (tmp_path / "sub").mkdir()
    (tmp_path / "README.md").write_text("clean\n")
    (tmp_path / "sub" / "notes.txt").write_text(f"leaked {PLANTED}\n")
    (tmp_path / "sub" / "fake.parquet").write_bytes(PLANTED.encode())  # not parquet: searched as bytes
    # A real shard (zstd pages): the hit is named by its column and row (from 0).
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": t}]}
            for t in ("a", "b", f"here: {PLANTED}", "d")]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "sub" / "shard.parquet", compression="zstd")
    monkeypatch.setattr("builder.release.folder.secret_values", lambda: [])
    assert secrets_in(tmp_path) == []  # no secret in the environment: nothing to look for
    monkeypatch.undo()
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    assert secrets_in(tmp_path) == ["sub/fake.parquet", "sub/notes.txt",
                                    "sub/shard.parquet, column messages.content, row 2"]


def test_a_killed_releases_temp_folder_is_removed_by_the_next(tmp_path: Path) -> None:
    from builder.release.folder import staging

    stale = tmp_path / ".out.tmp-999999999"  # no such pid: its release was killed
    (stale / "data").mkdir(parents=True)
    with staging(tmp_path / "out") as tmp:
        (tmp / "README.md").write_text("x")
    assert not stale.exists() and (tmp_path / "out" / "README.md").is_file()
