"""A tag is exactly its release: three versions with different shard counts and configs go to
one repo on the loopback Hub, then `load_dataset(repo, config, revision=tag)` of every tag
returns exactly that version's rows. Before this, a 1-shard release pushed over a 3-shard one
kept the old shards, the config's `train-*.parquet` glob matched all four and loading failed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets  # imported before hub_client_env, which then points it at the loopback Hub
import pyarrow.parquet as pq
import pytest

from builder.errors import UserError
from builder.release.push import PushResult, run_push
from tests.servers.hub_server import HubServer, hub_client_env, run_hub_server
from tests.test_release_helpers import build_work, write_recipe

WRITE = "hf_writeTokenForTagTests"
REPO = "test-org/answer-distill-tags"
# version → (English prompts, Chinese prompts, rows per shard): 3 shards per config, then
# 1 shard and no `original` config (no community responses), then 6 shards and `original` back.
VERSIONS = {"0.4.0": (60, 20, 27), "0.5.0": (50, 0, 100), "0.6.0": (40, 12, 10)}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three real releases, built by the release stage in version order (as siblings)."""
    from builder.recipe import load_recipe
    from builder.release.stage import run_release

    base = tmp_path_factory.mktemp("tag-releases")
    out: dict[str, Path] = {}
    for version, (n_en, n_zh, shard_rows) in VERSIONS.items():
        work = build_work(base / f"work-{version}", n_en=n_en, n_zh=n_zh, shard_rows=shard_rows)
        recipe = load_recipe(write_recipe(base / f"recipe-{version}.yaml", version))
        out[version] = base / "releases" / f"v{version}"
        run_release(recipe, work, out[version])
    shards = {v: len(list((p / "data" / "answer").glob("*.parquet"))) for v, p in out.items()}
    assert shards == {"0.4.0": 3, "0.5.0": 1, "0.6.0": 6}  # the fixture varies what it should
    assert not (out["0.5.0"] / "data" / "original").exists() and (out["0.6.0"] / "data" / "original").is_dir()
    return out


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with run_hub_server(tokens={WRITE: "write"}) as server, hub_client_env(server, tmp_path / "hf_home"):
        monkeypatch.setenv("HF_TOKEN", WRITE)
        yield server


def _push(hub: HubServer, release: Path) -> PushResult:
    return run_push(release, REPO, endpoint=hub.endpoint)


def _configs(release: Path) -> dict[str, int]:
    manifest = json.loads((release / "manifest.json").read_text())
    return {name: c["num_examples"] for name, c in manifest["configs"].items()}


def _row_hash(rows: list[dict[str, Any]]) -> str:
    """Order-free digest of a list of rows (a multiset of canonical JSON lines)."""
    lines = sorted(json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _local_rows(release: Path, config: str) -> list[dict[str, Any]]:
    return [r for f in sorted((release / "data" / config).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _release_tree(release: Path) -> dict[str, bytes]:
    return {p.relative_to(release).as_posix(): p.read_bytes() for p in release.rglob("*") if p.is_file()}


def test_every_tag_is_exactly_its_release(
    hub: HubServer, releases: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One test (the three builds are the slow part, so one xdist worker pays for them)."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.endpoint, token=WRITE)
    pushed: dict[str, PushResult] = {}
    for i, (version, release) in enumerate(releases.items()):
        if i == 1:  # something outside any release lands on main between two pushes
            api.upload_file(path_or_fileobj=b"scratch notes\n", path_in_repo="notes/scratch.md",
                            repo_id=REPO, repo_type="dataset", commit_message="notes")
        before = set(hub.repo_files(REPO)) if i else set()
        pushed[version] = res = _push(hub, release)
        tree = hub.repo_files(REPO, revision=res.tag)
        gitattributes = tree.pop(".gitattributes")  # the repo's LFS rules stay
        assert b"*.parquet filter=lfs" in gitattributes
        assert tree == _release_tree(release), version  # the tag holds this release, nothing else
        assert res.deleted == len(before - set(tree) - {".gitattributes"})
        assert hub.repo_files(REPO) == hub.repo_files(REPO, revision=res.tag)  # and so does main
    assert pushed["0.4.0"].deleted == 0 and pushed["0.5.0"].deleted > 0 and pushed["0.6.0"].deleted > 0
    # Each push is one commit with its deletions; every tag still points at its own commit.
    assert hub.refs(REPO)["tags"] == {r.tag: r.commit for r in pushed.values()}
    assert hub.refs(REPO)["branches"] == {"main": pushed["0.6.0"].commit}
    commits = [r for r in hub.requests_log if r.method == "POST" and "/commit/" in r.path]
    assert len(commits) == len(VERSIONS) + 1  # three releases and the notes
    assert not any(r.method == "DELETE" for r in hub.requests_log)  # no tag ever deleted (moved)

    cache = tmp_path / "ds"
    for version, release in releases.items():
        tag = pushed[version].tag
        for config, n_rows in _configs(release).items():
            ds = datasets.load_dataset(REPO, config, revision=tag, cache_dir=str(cache))
            assert list(ds) == ["train"], (tag, config)
            assert ds["train"].num_rows == n_rows, (tag, config)
            assert _row_hash(ds["train"].to_list()) == _row_hash(_local_rows(release, config)), (tag, config)
    # v0.5.0 has no `original`: its tag does not offer the config v0.4.0 and v0.6.0 have.
    assert "original" not in _configs(releases["0.5.0"])
    with pytest.raises(ValueError, match="original"):
        datasets.load_dataset(REPO, "original", revision="v0.5.0", cache_dir=str(cache))

    _refusals_never_move_a_tag(hub, releases, tmp_path, monkeypatch)


def _refusals_never_move_a_tag(hub: HubServer, releases: dict[str, Path], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """After the three pushes: an older version pushed again is refused before any upload, and
    a tag someone else made after push read the refs is refused by the Hub's 409: no tag moves."""
    refs = hub.refs(REPO)
    n_requests = len(hub.requests_log)
    with pytest.raises(UserError) as e:
        _push(hub, releases["0.4.0"])
    assert str(e.value) == (f"push {REPO}: tag v0.4.0 already exists; a version is published once — "
                            "bump `version` in the recipe and build a new release")
    new = hub.requests_log[n_requests:]
    assert not any(r.method in ("PUT", "DELETE") or "/commit/" in r.path or "/tag/" in r.path for r in new)
    assert hub.refs(REPO) == refs

    from huggingface_hub import HfApi

    v4 = refs["tags"]["v0.4.0"]
    HfApi(endpoint=hub.endpoint, token=WRITE).create_tag(REPO, tag="v0.7.0", revision=v4, repo_type="dataset")
    real_refs = HfApi.list_repo_refs

    def stale_refs(self: HfApi, *args: Any, **kwargs: Any) -> Any:  # as read just before that tag was made
        out = real_refs(self, *args, **kwargs)
        out.tags[:] = [t for t in out.tags if t.name != "v0.7.0"]
        return out

    monkeypatch.setattr(HfApi, "list_repo_refs", stale_refs)
    with pytest.raises(UserError, match=rf"^push {REPO}: tag v0\.7\.0 already exists; "):
        _push(hub, _retag(releases["0.6.0"], tmp_path / "v0.7.0", "0.7.0"))
    assert hub.refs(REPO)["tags"] == {**refs["tags"], "v0.7.0": v4}
    assert not any(r.method == "DELETE" for r in hub.requests_log)


def _retag(release: Path, to: Path, version: str) -> Path:
    """A copy of `release` as another, still-verified version."""
    import shutil

    from builder.release.manifest import write_manifest

    shutil.copytree(release, to)
    manifest = json.loads((to / "manifest.json").read_text())
    manifest.pop("files")
    manifest.update(version=version, tag=f"v{version}")
    (to / "manifest.json").unlink()
    write_manifest(to, manifest)
    return to
