"""`push` against the loopback Hub: upload + tag, download by tag, load, refusals, no leaks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.errors import UserError
from builder.release.push import run_push
from builder.variants.registry import to_build
from tests.servers.hub_server import HubServer, hub_client_env, run_hub_server
from tests.test_release_helpers import shared_release

VARIANTS = to_build(None)  # the registry's default variants
WRITE = "hf_writeTokenForPushTests"
READ = "hf_readTokenForPushTests"
REPO = "test-org/answer-distill-sample"


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_release(tmp_path_factory.mktemp("release"))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubServer]:
    with run_hub_server(tokens={WRITE: "write", READ: "read"}) as server, hub_client_env(server, tmp_path / "hf_home"):
        yield server


def _push(hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch, token: str | None = WRITE):
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    return run_push(release, REPO, endpoint=hub.endpoint)


def test_push_tag_download_and_load(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, snapshot_download

    res = _push(hub, release, monkeypatch)
    assert res.tag == "v0.1.0"
    assert hub.refs(REPO)["tags"] == {"v0.1.0": res.commit}
    snap = Path(snapshot_download(REPO, repo_type="dataset", revision="v0.1.0", endpoint=hub.endpoint,
                                  token=WRITE, cache_dir=tmp_path / "cache"))
    for rel in ("README.md", "manifest.json", "data/answer/train-00000-of-00004.parquet"):
        assert (snap / rel).read_bytes() == (release / rel).read_bytes(), rel
    files = HfApi(endpoint=hub.endpoint, token=WRITE).list_repo_files(REPO, repo_type="dataset", revision="v0.1.0")
    assert "quality/data_docs/index.html" in files and "figures/teacher_tokens.png" in files

    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    for v in VARIANTS:
        ds = datasets.load_dataset(str(snap), v, cache_dir=str(tmp_path / "ds"))["train"]
        assert set(ds["variant"]) == {v} and ds.num_rows > 0
    assert hub.token_leaks(WRITE) == []


def test_second_push_of_a_version_is_refused(hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _push(hub, release, monkeypatch)
    n_requests = len(hub.requests_log)
    with pytest.raises(UserError) as e:
        _push(hub, release, monkeypatch)
    assert str(e.value) == (f"push {REPO}: tag v0.1.0 already exists; a version is published once — "
                            "bump `version` in the recipe and build a new release")
    assert hub.refs(REPO)["tags"] == {"v0.1.0": first.commit}
    assert not any(r.method == "POST" and "/commit/" in r.path for r in hub.requests_log[n_requests:])


def test_missing_token_is_one_line(hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match=r"^HF_TOKEN is not set; export a Hugging Face write token"):
        _push(hub, release, monkeypatch, token=None)
    assert hub.requests_log == []


def test_read_token_is_a_clear_403(hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _push(hub, release, monkeypatch)  # the repo exists, so create_repo(exist_ok) passes for a reader
    (release.parent / "next").mkdir(exist_ok=True)
    copy = release.parent / "next" / "v0.1.1"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(release, copy)
    _retag(copy, "0.1.1")
    with pytest.raises(UserError) as e:
        _push(hub, copy, monkeypatch, token=READ)
    msg = str(e.value)
    assert msg.startswith(f"push {REPO}: create_commit failed with HTTP 403: the token may not write")
    assert "\n" not in msg and READ not in msg
    assert list(hub.refs(REPO)["tags"]) == ["v0.1.0"]
    assert hub.token_leaks(READ) == []


def test_bad_token_is_a_clear_401(hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match=r"HTTP 401: the Hub rejected the token") as e:
        _push(hub, release, monkeypatch, token="hf_notAKnownToken123")
    assert "hf_notAKnownToken123" not in str(e.value)


def test_unverified_folder_is_refused_before_any_request(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    (copy / "README.md").write_text((copy / "README.md").read_text() + "\nedited\n")
    with pytest.raises(UserError, match="not a verified release: README.md: sha256 differs"):
        _push(hub, copy, monkeypatch)
    assert hub.requests_log == []


def test_cli_push_prints_one_line_on_error(release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from builder.cli import app

    monkeypatch.delenv("HF_TOKEN", raising=False)
    res = CliRunner().invoke(app, ["push", str(release), "--repo", REPO, "--endpoint", "http://127.0.0.1:9"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "HF_TOKEN is not set" in lines[0]


def test_a_push_racing_another_commit_changes_nothing(
    hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit names main's head as read when listing; if main moved since, the Hub's 412
    refuses it, so no file the listing missed can survive into the tag."""
    from huggingface_hub import HfApi

    real_list = HfApi.list_repo_files

    def list_then_someone_commits(self: HfApi, *args: Any, **kwargs: Any) -> list[str]:
        files = real_list(self, *args, **kwargs)
        HfApi(endpoint=hub.endpoint, token=WRITE).upload_file(
            path_or_fileobj=b"x", path_in_repo="data/answer/train-00009-of-00010.parquet", repo_id=REPO,
            repo_type="dataset")
        return files

    monkeypatch.setattr(HfApi, "list_repo_files", list_then_someone_commits)
    with pytest.raises(UserError, match=rf"^push {REPO}: create_commit failed with HTTP 412: main moved while "
                                        r"pushing \(another push\?\); nothing was changed, push again"):
        _push(hub, release, monkeypatch)
    assert hub.refs(REPO)["tags"] == {}
    assert "README.md" not in hub.repo_files(REPO)


def _cli_push(hub: HubServer, folder: Path, repo: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`answer-distill push` with a write token: its exit must be 2, its output one line and
    nothing may reach the Hub. Returns that line."""
    from typer.testing import CliRunner

    from builder.cli import app

    monkeypatch.setenv("HF_TOKEN", WRITE)
    res = CliRunner().invoke(app, ["push", str(folder), "--repo", repo, "--endpoint", hub.endpoint])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert (res.exit_code, len(lines)) == (2, 1), (res.output, repr(res.exception))
    assert hub.requests_log == []
    return lines


@pytest.mark.parametrize("repo", [
    "answer-distill-sample", "test-org/", "/answer-distill-sample", "test-org/answer/distill",
    "-org/name", "test-org/answer distill", "test-org/answer-distill\n", "test-org/ansẅer",
    "test-org/answer--distill", "test-org/answer..distill", "test-org/a[/b]", "",
])
def test_cli_refuses_a_repo_id_that_is_not_org_name(
    hub: HubServer, release: Path, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    [line] = _cli_push(hub, release, repo, monkeypatch)
    assert "is not a Hub dataset id; pass --repo org/name" in line


@pytest.mark.parametrize("where", ["data", "footer_text"])
def test_damage_anywhere_in_a_shard_is_one_line_never_a_crash(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """In a data page, or in a column name in the footer (which once raised UnicodeDecodeError)."""
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    shard = copy / "data" / "answer" / "train-00000-of-00004.parquet"
    data = bytearray(shard.read_bytes())
    footer_len = int.from_bytes(data[-8:-4], "little")
    at = data.index(b"endpoint_kind", len(data) - 8 - footer_len) + 9 if where == "footer_text" else 64
    data[at] ^= 0xFF  # footer_text: "endpoint_\x94ind", not UTF-8
    shard.write_bytes(bytes(data))
    [line] = _cli_push(hub, copy, REPO, monkeypatch)
    assert "not a verified release: data/answer/train-00000-of-00004.parquet: sha256 differs" in line


def test_cli_refuses_a_release_missing_a_config(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The config's folder deleted: the manifest still lists its files.
    gone = tmp_path / "gone"
    shutil.copytree(release, gone)
    shutil.rmtree(gone / "data" / "original")
    [line] = _cli_push(hub, gone, REPO, monkeypatch)
    assert "not a verified release: data/original/train-00000-of-00001.parquet: listed in the manifest but missing" in line

    # ...and with a manifest rewritten to match (it verifies): the card still declares it.
    _rewrite_manifest(gone, lambda m: m["configs"].pop("original"))
    from builder.release.manifest import verify_release

    assert verify_release(gone) == []
    [line] = _cli_push(hub, gone, REPO, monkeypatch)
    assert ("not a verified release: config original: no file matches data/original/train-*.parquet; "
            "the release is missing that config") in line


def _with_card_metadata(release: Path, copy: Path, edit: Any) -> Path:
    """A copy of the release whose card metadata `edit` changed, re-hashed in the manifest (so only
    the card's own rules can refuse it)."""
    import yaml

    from builder.release.manifest import card_metadata

    shutil.copytree(release, copy)
    readme = copy / "README.md"
    meta = card_metadata(readme)
    body = readme.read_text().split("\n---", 1)[1]
    edit(meta)
    readme.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---" + body)
    _rewrite_manifest(copy, lambda m: None)
    return copy


def test_card_must_declare_every_config_the_manifest_counts(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def drop_control(meta: dict[str, Any]) -> None:
        meta["configs"] = [c for c in meta["configs"] if c["config_name"] != "control"]

    copy = _with_card_metadata(release, tmp_path / "copy", drop_control)
    with pytest.raises(UserError, match=r"not a verified release: config control: in manifest.json but not "
                                        r"declared in the card's configs; rebuild it"):
        _push(hub, copy, monkeypatch)
    assert hub.requests_log == []


def test_a_version_no_tag_can_be_made_from_is_refused_before_upload(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    _rewrite_manifest(copy, lambda m: m.update(version="0.2.0/../main"))
    with pytest.raises(UserError, match=r"not a verified release: manifest.json version '0.2.0/../main' is not semver"):
        _push(hub, copy, monkeypatch)
    assert hub.requests_log == []


def _rewrite_manifest(folder: Path, edit: Any) -> None:
    """Apply edit(manifest) and re-hash the folder, as if `release` had written it so."""
    import json

    from builder.release.manifest import write_manifest

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("files")
    edit(manifest)
    (folder / "manifest.json").unlink()
    write_manifest(folder, manifest)


def _retag(folder: Path, version: str) -> None:
    """Make a copy a distinct, still-verified version (as `release` would have written it)."""
    import json

    from builder.release.manifest import write_manifest

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("files")
    manifest.update(version=version, tag=f"v{version}")
    (folder / "manifest.json").unlink()
    write_manifest(folder, manifest)


@pytest.mark.parametrize("field, expect", [
    ("license_name", "license `other` needs a `license_name`"),
    ("annotations_creators", "annotations_creators 'by hand' is not one of"),
])
def test_cli_refuses_a_card_whose_metadata_breaks_the_hub_rules(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, expect: str
) -> None:
    def break_rule(meta: dict[str, Any]) -> None:
        if field == "license_name":
            meta.pop("license_name")
        else:
            meta[field] = ["by hand"]

    copy = _with_card_metadata(release, tmp_path / "copy", break_rule)
    [line] = _cli_push(hub, copy, REPO, monkeypatch)
    assert f"{copy}: not a verified release: README.md: metadata: {expect}" in line


def test_push_defaults_to_the_repo_the_release_was_built_for(
    hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    assert json.loads((release / "manifest.json").read_text())["repo_id"] == REPO
    monkeypatch.setenv("HF_TOKEN", WRITE)
    res = run_push(release, None, endpoint=hub.endpoint)
    assert (res.repo_id, res.tag, res.warnings) == (REPO, "v0.1.0", [])
    assert hub.refs(REPO)["tags"] == {"v0.1.0": res.commit}


def test_pushing_to_another_repo_than_the_card_names_warns(
    hub: HubServer, release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", WRITE)
    res = run_push(release, "test-org/elsewhere", endpoint=hub.endpoint)
    assert res.warnings == [f"the card's load snippet and citation name {REPO}, not test-org/elsewhere; "
                            "build the next version with `release --repo test-org/elsewhere`"]


def test_a_release_naming_no_repo_needs_repo(hub: HubServer, release: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    _rewrite_manifest(copy, lambda m: m.update(repo_id=None))
    monkeypatch.setenv("HF_TOKEN", WRITE)
    with pytest.raises(UserError, match=r"the release names no repo id; pass --repo org/name"):
        run_push(copy, None, endpoint=hub.endpoint)
    assert hub.requests_log == []
