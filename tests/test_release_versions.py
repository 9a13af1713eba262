"""Licenses, versions and the changelog between two releases."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from builder.errors import UserError
from builder.recipe import load_recipe
from builder.release.licenses import decide, why_restricted
from builder.release.stage import run_release
from builder.release.versions import find_previous, sort_key
from builder.workdir import WorkDir
from tests.test_release_helpers import rewrite_variant, shared_release, shared_work, write_recipe


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_release(tmp_path_factory.mktemp("release"))


def _recipe(tmp_path: Path, licenses: dict[str, str], forced: str | None = None) -> Any:
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml"))
    for s in recipe.sources:
        s.license = licenses.get(s.name, s.license)
    recipe.release.license = forced
    return recipe


@pytest.mark.parametrize(("lic", "why"), [
    ("cc-by-nc-4.0", "non-commercial (cc-by-nc-4.0)"), ("CC-BY-NC-SA-4.0", "non-commercial (cc-by-nc-sa-4.0)"),
    ("undeclared", "license undeclared"), ("", "license undeclared"), ("research-only", "research-only (research-only)"),
    ("llama2", "not a recognised permissive license (llama2)"), ("apache-2.0", None), ("MIT", None),
])
def test_why_restricted(lic: str, why: str | None) -> None:
    assert why_restricted(lic) == why


def test_license_decisions(tmp_path: Path) -> None:
    both = {"r1-mmlupro-pcmb": {"apache-2.0"}, "alpaca-zh": {"apache-2.0"}}
    same = decide(_recipe(tmp_path, {"alpaca-zh": "apache-2.0"}), both)
    assert same.license == "apache-2.0" and not same.restricted
    mixed = decide(_recipe(tmp_path, {"alpaca-zh": "mit"}), {"r1-mmlupro-pcmb": {"apache-2.0"}, "alpaca-zh": {"mit"}})
    assert mixed.license == ["apache-2.0", "mit"]
    nc = decide(_recipe(tmp_path, {}), {"r1-mmlupro-pcmb": {"apache-2.0"}, "alpaca-zh": {"cc-by-nc-4.0"}})
    assert nc.license == "other" and [r[0] for r in nc.restricted] == ["alpaca-zh"]
    assert "alpaca-zh (non-commercial (cc-by-nc-4.0))" in nc.statement
    # A row whose source_license is undeclared taints its source even if the recipe says MIT.
    rows = decide(_recipe(tmp_path, {"alpaca-zh": "mit"}), {"alpaca-zh": {"undeclared"}})
    assert rows.license == "other" and "license undeclared" in rows.statement
    # Sources with no released rows do not count.
    only_pcmb = decide(_recipe(tmp_path, {}), {"r1-mmlupro-pcmb": {"apache-2.0"}})
    assert only_pcmb.license == "apache-2.0"
    assert [a[0] for a in only_pcmb.attributions] == ["r1-mmlupro-pcmb"]


def test_forcing_a_permissive_label_over_nc_sources_is_refused(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {}, forced="mit")
    with pytest.raises(UserError, match=r"release\.license: 'mit' is permissive but source\(s\) alpaca-zh are not"):
        decide(recipe, {"r1-mmlupro-pcmb": {"apache-2.0"}, "alpaca-zh": {"cc-by-nc-4.0"}})


def test_semver_order() -> None:
    versions = ["0.10.0", "0.2.0", "0.2.0-rc.1", "1.0.0", "0.2.1"]
    assert sorted(versions, key=sort_key) == ["0.2.0-rc.1", "0.2.0", "0.2.1", "0.10.0", "1.0.0"]


def test_second_version_gets_a_changelog_diff(release: Path, tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    shutil.copytree(release, releases / "v0.1.0")
    (releases / "unrelated").mkdir()
    work = WorkDir(tmp_path / "work")
    shutil.copytree(shared_work(), work.root)
    shutil.rmtree(work.root / "quality", ignore_errors=True)

    def drop_alpaca(rows: list[dict[str, Any]]) -> None:
        rows[:] = [r for r in rows if r["source"] != "alpaca-zh" or int(r["source_row_id"]) >= 5]

    for v in ("answer", "think_summary"):  # a think_summary row needs its answer row
        rewrite_variant(work, v, drop_alpaca)
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", version="0.2.0"))
    out = releases / "v0.2.0"
    assert find_previous(out, recipe.name, recipe.version) == releases / "v0.1.0"
    run_release(recipe, work, out)
    log = (out / "CHANGELOG.md").read_text()
    assert "## v0.2.0" in log and "Compared with v0.1.0." in log
    # Content: 5 prompts removed from answer (and think_summary), none added or changed.
    assert "| `answer` | 80 | 75 | -5 | 0 | 5 | 0 |" in log
    assert "| `think_summary` | 80 | 75 | -5 | 0 | 5 | 0 |" in log
    assert "| `full` | 80 | 80 | +0 | 0 | 0 | 0 |" in log
    assert "| `answer` | alpaca-zh | 20 | 15 | -5 |" in log
    assert "- no recipe change other than the version" in log
    assert "## v0.1.0" in log  # the previous release's entries follow
    assert '"previous_version": "0.1.0"' in (out / "manifest.json").read_text()
