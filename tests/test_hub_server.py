"""The loopback test Hub, driven by the real huggingface_hub client and datasets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.servers.hub_server import HubServer, hub_client_env, run_hub_server

# Short fake tokens: nothing here may look like a real Hub token.
WRITE = "hf_write_test"
READ = "hf_read_test"
REPO = "test-org/answer-distill-sample"
README = """---
license: mit
configs:
- config_name: answer
  data_files:
  - split: train
    path: answer/train-*.parquet
---
# sample

A tiny card for the test Hub.
"""
ROWS = {"row_id": ["a1", "b2", "c3"], "assistant": ["4", "Paris", "def f(): pass"]}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubServer]:
    with (
        run_hub_server(tokens={WRITE: "write", READ: "read"}) as server,
        hub_client_env(server, tmp_path / "hf_home"),
    ):
        yield server


@pytest.fixture
def release_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "release"
    (folder / "answer").mkdir(parents=True)
    (folder / "README.md").write_text(README)
    pq.write_table(pa.table(ROWS), folder / "answer" / "train-00000-of-00001.parquet")
    return folder


def _api(hub: HubServer, token: str | None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.endpoint, token=token)


def _publish(hub: HubServer, release_dir: Path) -> str:
    api = _api(hub, WRITE)
    url = api.create_repo(REPO, repo_type="dataset", exist_ok=True)
    assert url.repo_id == REPO and url.repo_type == "dataset"
    info = api.upload_folder(
        repo_id=REPO, repo_type="dataset", folder_path=release_dir, commit_message="v0.1.0"
    )
    return info.oid


def test_publish_tag_download_and_load(
    hub: HubServer, release_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import snapshot_download

    sha = _publish(hub, release_dir)
    api = _api(hub, WRITE)
    api.create_tag(REPO, tag="v0.1.0", revision=sha, repo_type="dataset")

    refs = api.list_repo_refs(REPO, repo_type="dataset")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v0.1.0", sha)]
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", sha)]
    files = api.list_repo_files(REPO, repo_type="dataset", revision="v0.1.0")
    parquet = "answer/train-00000-of-00001.parquet"
    assert sorted(files) == [".gitattributes", "README.md", parquet]
    assert api.repo_info(REPO, repo_type="dataset", revision="v0.1.0").sha == sha
    assert api.whoami()["auth"]["accessToken"]["role"] == "write"

    # The parquet file went through the LFS batch API + a signed CDN PUT; README inline.
    assert any(r.server == "cdn" and r.method == "PUT" for r in hub.requests_log)
    tree = {e.path: e for e in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)}
    local = (release_dir / parquet).read_bytes()
    assert tree[parquet].lfs.sha256 == hashlib.sha256(local).hexdigest()
    assert tree["README.md"].lfs is None

    snap = snapshot_download(
        REPO,
        repo_type="dataset",
        revision="v0.1.0",
        endpoint=hub.endpoint,
        token=WRITE,
        cache_dir=tmp_path / "cache",
    )
    assert Path(snap).name == sha
    for rel in ("README.md", parquet):
        assert (Path(snap) / rel).read_bytes() == (release_dir / rel).read_bytes()
    local_dir = tmp_path / "downloaded"
    snapshot_download(
        REPO,
        repo_type="dataset",
        revision=sha,
        endpoint=hub.endpoint,
        token=WRITE,
        local_dir=local_dir,
    )
    assert (local_dir / parquet).read_bytes() == local
    # The LFS blob came from the CDN, and the client did not send it the token.
    cdn_gets = [r for r in hub.requests_log if r.server == "cdn" and r.method == "GET"]
    assert cdn_gets and all(r.authorization is None for r in cdn_gets)

    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    ds = datasets.load_dataset(str(local_dir), "answer", cache_dir=str(tmp_path / "ds"))
    assert ds["train"].to_dict() == ROWS

    assert hub.repo_files(REPO, revision="v0.1.0")[parquet] == local
    assert any(r.authorization == f"Bearer {WRITE}" for r in hub.requests_log)
    assert hub.token_leaks(WRITE) == []


def test_token_leak_detector_sees_uploaded_files(hub: HubServer, release_dir: Path) -> None:
    (release_dir / "manifest.json").write_text(f'{{"token": "{WRITE}"}}')
    _publish(hub, release_dir)
    leaks = hub.token_leaks(WRITE)
    assert any("manifest.json" in leak for leak in leaks)
    assert any("in the body" in leak for leak in leaks)


def test_unchanged_upload_makes_no_new_commit(hub: HubServer, release_dir: Path) -> None:
    first = _publish(hub, release_dir)
    assert _publish(hub, release_dir) == first
    (release_dir / "README.md").write_text(README + "\nmore\n")
    assert _publish(hub, release_dir) != first


def test_duplicate_tag_is_a_409(hub: HubServer, release_dir: Path) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    sha = _publish(hub, release_dir)
    api = _api(hub, WRITE)
    api.create_tag(REPO, tag="v0.1.0", revision=sha, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_tag(REPO, tag="v0.1.0", revision=sha, repo_type="dataset")
    assert err.value.response.status_code == 409
    assert "already exists" in str(err.value)
    api.create_tag(REPO, tag="v0.1.0", revision=sha, repo_type="dataset", exist_ok=True)


def test_bad_or_missing_token_is_a_401(hub: HubServer, release_dir: Path) -> None:
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    _publish(hub, release_dir)
    for call in (
        lambda api: api.whoami(),
        lambda api: api.create_repo(REPO, repo_type="dataset", exist_ok=True),
        lambda api: api.repo_info(REPO, repo_type="dataset"),
    ):
        with pytest.raises(HfHubHTTPError) as err:
            call(_api(hub, "hf_not_a_token"))
        assert err.value.response.status_code == 401
        assert not isinstance(err.value, RepositoryNotFoundError)
    with pytest.raises(HfHubHTTPError) as err:
        _api(hub, None).repo_info(REPO, repo_type="dataset")
    assert err.value.response.status_code == 401


def test_read_token_cannot_write(hub: HubServer, release_dir: Path) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    reader = _api(hub, READ)
    with pytest.raises(HfHubHTTPError) as err:
        reader.create_repo(REPO, repo_type="dataset", exist_ok=True)
    assert err.value.response.status_code == 403

    sha = _publish(hub, release_dir)
    # Like the real client: exist_ok + 403 falls back to repo_info, which a reader may do.
    reader.create_repo(REPO, repo_type="dataset", exist_ok=True)
    (release_dir / "extra.txt").write_text("x")
    for call in (
        lambda: reader.upload_folder(repo_id=REPO, repo_type="dataset", folder_path=release_dir),
        lambda: reader.create_tag(REPO, tag="v9", revision=sha, repo_type="dataset"),
    ):
        with pytest.raises(HfHubHTTPError) as err:
            call()
        assert err.value.response.status_code == 403
    assert reader.whoami()["auth"]["accessToken"]["role"] == "read"
    assert hub.refs(REPO)["tags"] == {}


def test_not_found_errors(hub: HubServer, release_dir: Path) -> None:
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    api = _api(hub, WRITE)
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("test-org/nope", repo_type="dataset")
    _publish(hub, release_dir)
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(REPO, repo_type="dataset", revision="v9.9.9")


def test_invalid_card_metadata_fails_before_upload(hub: HubServer, release_dir: Path) -> None:
    api = _api(hub, WRITE)
    api.create_repo(REPO, repo_type="dataset")
    (release_dir / "README.md").write_text("---\nconfigs: [\n---\n# broken\n")
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api.upload_folder(repo_id=REPO, repo_type="dataset", folder_path=release_dir)
    assert not any(r.server == "cdn" for r in hub.requests_log)


def test_branches_tags_and_stale_parent(hub: HubServer, release_dir: Path) -> None:
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    sha = _publish(hub, release_dir)
    api = _api(hub, WRITE)
    api.create_branch(REPO, branch="dev", revision=sha, repo_type="dataset")
    dev = api.create_commit(
        REPO,
        [CommitOperationAdd("notes.txt", b"dev only")],
        commit_message="dev",
        repo_type="dataset",
        revision="dev",
    )
    assert "notes.txt" in hub.repo_files(REPO, revision="dev")
    assert "notes.txt" not in hub.repo_files(REPO, revision="main")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            REPO,
            [CommitOperationAdd("late.txt", b"x")],
            commit_message="stale",
            repo_type="dataset",
            revision="dev",
            parent_commit=sha,
        )
    assert err.value.response.status_code == 412
    api.create_tag(REPO, tag="dev-1", revision="dev", repo_type="dataset")
    assert hub.refs(REPO)["tags"] == {"dev-1": dev.oid}
    api.delete_tag(REPO, tag="dev-1", repo_type="dataset")
    assert hub.refs(REPO)["tags"] == {}


def test_client_env_is_restored(tmp_path: Path) -> None:
    from huggingface_hub import constants

    before = (constants.ENDPOINT, constants.HF_HUB_DISABLE_XET)
    with run_hub_server(tokens={WRITE: "write"}) as server:
        with hub_client_env(server, tmp_path / "home"):
            assert server.endpoint == constants.ENDPOINT and constants.HF_HUB_DISABLE_XET
        assert before == (constants.ENDPOINT, constants.HF_HUB_DISABLE_XET)
