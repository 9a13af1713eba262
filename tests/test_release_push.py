"""`push` against the loopback Hub: upload + tag, download by tag, load, refusals, no leaks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

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
    assert msg.startswith(f"push {REPO}: upload_folder failed with HTTP 403: the token may not write")
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


def _retag(folder: Path, version: str) -> None:
    """Make a copy a distinct, still-verified version (as `release` would have written it)."""
    import json

    from builder.release.manifest import write_manifest

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("files")
    manifest.update(version=version, tag=f"v{version}")
    (folder / "manifest.json").unlink()
    write_manifest(folder, manifest)
