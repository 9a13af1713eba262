"""A loopback Hugging Face Hub for tests (TEST CODE, never shipped or used by the toolkit).

It speaks the HTTP API that the real ``huggingface_hub`` 2.4.0 client uses when Xet is
disabled (``HF_HUB_DISABLE_XET=1``): repo creation, the preupload + ndjson commit
endpoints, the Git LFS batch API with the ``basic`` transfer, tags and branches, refs,
repo info, tree / paths-info listings and ``resolve`` downloads. State lives in memory:
every commit is a full snapshot of the repo's file tree with its own sha.

Two listeners run on 127.0.0.1: the Hub itself and a "CDN" on another port. Like the
real Hub, LFS uploads go to pre-signed CDN URLs and ``resolve`` answers LFS files with a
302 to a signed CDN URL, so the client strips its Authorization header there.

Usage::

    with run_hub_server(tokens={"hf_write_x": "write", "hf_read_x": "read"}) as hub:
        api = HfApi(endpoint=hub.endpoint, token="hf_write_x")
        ...
        assert hub.token_leaks("hf_write_x") == []

Every request is kept in ``hub.requests_log``; its Authorization header is stored apart
from the other headers so tests can check that a token only ever travels there.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import yaml

ROLES = ("read", "write")
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space", "kernels": "kernel"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/", "kernel": "kernels/"}
DEFAULT_BRANCH = "main"
# Files above this size always go through LFS, whatever .gitattributes says (as on the Hub).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
# Our own default .gitattributes for new repos: the usual binary and data formats go to LFS.
_LFS_SUFFIXES = (
    "7z arrow bin bz2 ckpt gz h5 joblib lz4 msgpack npy npz onnx parquet pickle pkl pt pth "
    "safetensors tar tgz xz zip zst mp3 wav flac jpg jpeg png webp"
)
INITIAL_GITATTRIBUTES = "".join(
    f"*.{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in _LFS_SUFFIXES.split()
)


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what ``git hash-object`` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LoggedRequest:
    """One HTTP request as the server saw it. ``headers`` never holds Authorization."""

    server: str  # "hub" or "cdn"
    method: str
    path: str  # raw request target, query included
    headers: dict[str, str]
    authorization: str | None
    body: bytes
    status: int
    role: str | None  # role of the presented token, None if absent or unknown


@dataclass
class _File:
    data: bytes
    lfs: bool

    # Cached: listings and downloads ask for these hashes again and again.
    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def pointer(self) -> bytes:
        return lfs_pointer(self.sha256, len(self.data))

    @cached_property
    def blob_oid(self) -> str:
        # For LFS files git stores the pointer, so the blob id is the pointer's.
        return git_blob_oid(self.pointer if self.lfs else self.data)


@dataclass
class _Commit:
    sha: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, _File]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content


class _HttpError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> _Response:
    return _Response(
        status,
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


class HubServer:
    """In-memory Hub state plus the two loopback listeners. Build it with ``run_hub_server``."""

    def __init__(
        self, tokens: Mapping[str, str], *, user: str = "test-user", anonymous_read: bool = False
    ):
        for role in tokens.values():
            if role not in ROLES:
                raise ValueError(f"token role must be one of {ROLES}, got {role!r}")
        self.tokens = dict(tokens)
        self.user = user
        self.anonymous_read = anonymous_read
        self.requests_log: list[LoggedRequest] = []
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)  # signs the CDN URLs, like S3 pre-signed URLs
        self._counter = itertools.count()
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, "hub"))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, "cdn"))
        for server in (self._hub, self._cdn):
            # The client's keep-alive connections must not block shutdown.
            server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._hub.server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{self._cdn.server_address[1]}"
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for server in (self._hub, self._cdn):
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- inspection helpers for tests --------------------------------------------------------

    def repo_files(
        self, repo_id: str, *, repo_type: str = "dataset", revision: str = DEFAULT_BRANCH
    ) -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision`` (branch, tag or sha), as bytes."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            return {path: f.data for path, f in self._resolve(repo, revision).files.items()}

    def refs(self, repo_id: str, *, repo_type: str = "dataset") -> dict[str, dict[str, str]]:
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            return {"branches": dict(repo.branches), "tags": dict(repo.tags)}

    def stored_contents(self) -> Iterator[tuple[str, bytes]]:
        """Every file content held in any commit and every LFS object, with a label."""
        with self._lock:
            items: list[tuple[str, bytes]] = []
            for repo in self._repos.values():
                for commit in repo.commits.values():
                    items += [
                        (f"{repo.repo_id}@{commit.sha[:8]}:{p}", f.data)
                        for p, f in commit.files.items()
                    ]
                items += [
                    (f"{repo.repo_id} lfs:{oid[:12]}", data)
                    for oid, data in repo.lfs_objects.items()
                ]
                items += [
                    (
                        f"{repo.repo_id} commit {c.sha[:8]} message",
                        f"{c.title}\n{c.message}".encode(),
                    )
                    for c in repo.commits.values()
                ]
        return iter(items)

    def token_leaks(self, token: str) -> list[str]:
        """Where ``token`` shows up anywhere but an Authorization header: request paths,
        other headers, request bodies, stored files and commit messages. Empty is good."""
        needle = token.encode()
        leaks: list[str] = []
        for i, req in enumerate(list(self.requests_log)):
            where = f"request #{i} {req.method} {req.path.split('?')[0]}"
            if token in req.path:
                leaks.append(f"{where}: in the URL")
            leaks += [f"{where}: in header {k}" for k, v in req.headers.items() if token in v]
            if needle in req.body or needle in _maybe_b64_decoded(req.body):
                leaks.append(f"{where}: in the body")
        leaks += [f"stored {label}" for label, data in self.stored_contents() if needle in data]
        return leaks

    # -- auth --------------------------------------------------------------------------------

    def _role(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.tokens.get(authorization[len("Bearer ") :].strip())

    def _require(self, authorization: str | None, need: str, what: str) -> str:
        if not authorization:
            if need == "read" and self.anonymous_read:
                return "anonymous"
            raise _HttpError(401, "Authentication required: no token was sent")
        role = self._role(authorization)
        if role is None:
            # The exact message the Hub sends; the client keys its 401 handling on it.
            raise _HttpError(401, "Invalid credentials in Authorization header")
        if need == "write" and role != "write":
            raise _HttpError(403, f"You don't have the rights to {what}: this token is read-only")
        return role

    # -- repo state --------------------------------------------------------------------------

    def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HttpError(
                404, f"Repository not found: {repo_type} {repo_id}", code="RepoNotFound"
            )
        return repo

    def _resolve(self, repo: _Repo, revision: str) -> _Commit:
        rev = unquote(revision)
        for prefix, table in (("refs/heads/", repo.branches), ("refs/tags/", repo.tags)):
            if rev.startswith(prefix) and rev[len(prefix) :] in table:
                return repo.commits[table[rev[len(prefix) :]]]
        if rev in repo.branches:
            return repo.commits[repo.branches[rev]]
        if rev in repo.tags:
            return repo.commits[repo.tags[rev]]
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            matches = [sha for sha in repo.commits if sha.startswith(rev)]
            if len(matches) == 1:
                return repo.commits[matches[0]]
        raise _HttpError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")

    def _new_commit(
        self, repo: _Repo, parent: _Commit | None, title: str, message: str, files: dict[str, _File]
    ) -> _Commit:
        seed = f"{repo.repo_id}\n{parent.sha if parent else ''}\n{title}\n{next(self._counter)}\n"
        seed += "".join(f"{p}:{f.blob_oid}\n" for p, f in sorted(files.items()))
        commit = _Commit(
            hashlib.sha1(seed.encode()).hexdigest(),
            parent.sha if parent else None,
            title,
            message,
            _now(),
            files,
        )
        repo.commits[commit.sha] = commit
        return commit

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.endpoint}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\n".join(parts).encode(), hashlib.sha256).hexdigest()

    def _cdn_url(self, action: str, repo: _Repo, oid: str) -> str:
        sig = self._sign(action, repo.repo_type, repo.repo_id, oid)
        return f"{self.cdn_endpoint}/{action}/{repo.repo_type}/{repo.repo_id}/{oid}?sig={sig}"

    @staticmethod
    def _lfs_patterns(commit: _Commit | None) -> list[str]:
        attrs = commit.files.get(".gitattributes") if commit else None
        text = attrs.data.decode("utf-8", "replace") if attrs else INITIAL_GITATTRIBUTES
        return [
            line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()
        ]

    # -- routing -----------------------------------------------------------------------------

    def handle(
        self, server: str, method: str, target: str, body: bytes, authorization: str | None
    ) -> _Response:
        path, _, query = target.partition("?")
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        params = parse_qs(query)
        with self._lock:
            if server == "cdn":
                return self._cdn_route(method, segments, params, body)
            return self._hub_route(method, segments, params, body, authorization)

    def _hub_route(
        self,
        method: str,
        seg: list[str],
        params: dict[str, list[str]],
        body: bytes,
        auth: str | None,
    ) -> _Response:
        if seg[:1] == ["api"]:
            rest = seg[1:]
            if rest == ["whoami-v2"] and method == "GET":
                return self._whoami(auth)
            if rest == ["validate-yaml"] and method == "POST":
                self._require(auth, "read", "validate metadata")
                return self._validate_yaml(_load_json(body))
            if rest == ["repos", "create"] and method == "POST":
                return self._create_repo(auth, _load_json(body))
            if rest == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo(auth, _load_json(body))
            if len(rest) >= 3 and rest[0] in REPO_TYPES:
                return self._repo_api(
                    method,
                    REPO_TYPES[rest[0]],
                    f"{rest[1]}/{rest[2]}",
                    rest[3:],
                    params,
                    body,
                    auth,
                )
            raise _HttpError(404, f"Not implemented by the test Hub: {method} /{'/'.join(seg)}")
        repo_type = "model"
        if seg[:1] and seg[0] in REPO_TYPES and seg[0] != "models":
            repo_type, seg = REPO_TYPES[seg[0]], seg[1:]
        if len(seg) >= 3 and seg[1].endswith(".git") and seg[2:5] == ["info", "lfs", "objects"]:
            repo_id = f"{seg[0]}/{seg[1][:-4]}"
            if seg[5:] == ["batch"] and method == "POST":
                return self._lfs_batch(auth, repo_type, repo_id, _load_json(body))
            if seg[5:] == ["verify"] and method == "POST":
                return self._lfs_verify(auth, repo_type, repo_id, _load_json(body))
        if len(seg) >= 5 and seg[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve_file(
                auth, repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:])
            )
        raise _HttpError(404, f"Not implemented by the test Hub: {method} /{'/'.join(seg)}")

    def _repo_api(
        self,
        method: str,
        repo_type: str,
        repo_id: str,
        rest: list[str],
        params: dict[str, list[str]],
        body: bytes,
        auth: str | None,
    ) -> _Response:
        if any(part.startswith("xet-") for part in rest):
            raise _HttpError(
                501,
                "The test Hub has no Xet storage: set HF_HUB_DISABLE_XET=1 "
                "(or patch huggingface_hub.constants.HF_HUB_DISABLE_XET) before uploading",
            )
        write = method != "GET" and rest[:1] in (["preupload"], ["commit"], ["tag"], ["branch"])
        self._require(auth, "write" if write else "read", f"write to {repo_type} {repo_id}")
        repo = self._get_repo(repo_type, repo_id)
        if not write and repo.private and not auth:
            raise _HttpError(404, f"Repository not found: {repo_id}", code="RepoNotFound")
        action, args = (rest[0], rest[1:]) if rest else ("", [])
        if method == "GET" and action == "":
            return self._repo_info(repo, self._resolve(repo, DEFAULT_BRANCH), params)
        if method == "GET" and action == "revision" and args:
            return self._repo_info(repo, self._resolve(repo, "/".join(args)), params)
        if method == "GET" and action == "refs":
            return self._list_refs(repo, params)
        if method == "GET" and action == "tree" and args:
            return self._tree(repo, self._resolve(repo, args[0]), "/".join(args[1:]), params)
        if method == "POST" and action == "paths-info" and args:
            return self._paths_info(repo, self._resolve(repo, args[0]), body)
        if method == "GET" and action == "commits" and args:
            return self._list_commits(repo, self._resolve(repo, "/".join(args)))
        if method == "POST" and action == "preupload" and args:
            return self._preupload(repo, args[0], _load_json(body), params)
        if method == "POST" and action == "commit" and args:
            return self._commit(repo, args[0], body, params)
        if method == "POST" and action == "tag" and args:
            return self._create_tag(repo, args[0], _load_json(body))
        if method == "DELETE" and action == "tag" and args:
            return self._delete_tag(repo, "/".join(args))
        if method == "POST" and action == "branch" and args:
            return self._create_branch(repo, args[0], _load_json(body) if body else {})
        raise _HttpError(404, f"Not implemented by the test Hub: {method} {action}")

    def _cdn_route(
        self, method: str, seg: list[str], params: dict[str, list[str]], body: bytes
    ) -> _Response:
        if len(seg) < 5 or seg[0] not in ("upload", "blob"):
            raise _HttpError(404, "No such object")
        action, repo_type, repo_id, oid = seg[0], seg[1], f"{seg[2]}/{seg[3]}", seg[4]
        sig = params.get("sig", [""])[0]
        if not hmac.compare_digest(sig, self._sign(action, repo_type, repo_id, oid)):
            raise _HttpError(403, "Signature does not match")
        repo = self._get_repo(repo_type, repo_id)
        if action == "upload" and method == "PUT":
            if hashlib.sha256(body).hexdigest() != oid:
                raise _HttpError(400, "Uploaded content does not match its sha256 oid")
            repo.lfs_objects[oid] = body
            return _Response(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if action == "blob" and method in ("GET", "HEAD"):
            data = repo.lfs_objects.get(oid)
            if data is None:
                raise _HttpError(404, "No such object")
            return _Response(
                200,
                data,
                {
                    "Content-Type": "application/octet-stream",
                    "ETag": f'"{oid}"',
                    "Accept-Ranges": "bytes",
                },
            )
        raise _HttpError(405, f"{method} not allowed here")

    # -- endpoints ---------------------------------------------------------------------------

    def _whoami(self, auth: str | None) -> _Response:
        role = self._require(auth, "read", "read your profile")
        if role == "anonymous":  # whoami always needs a real token
            raise _HttpError(401, "Invalid credentials in Authorization header")
        return _json(
            {
                "type": "user",
                "id": hashlib.sha1(self.user.encode()).hexdigest()[:24],
                "name": self.user,
                "fullname": self.user,
                "orgs": [],
                "isPro": False,
                "canPay": False,
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": f"{role}-token", "role": role},
                },
            }
        )

    @staticmethod
    def _front_matter(text: str) -> dict[str, Any] | None:
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, flags=re.DOTALL)
        if match is None:
            return None
        data = yaml.safe_load(match.group(1))
        if data is not None and not isinstance(data, dict):
            raise ValueError("metadata must be a YAML mapping")
        return data or {}

    def _validate_yaml(self, payload: dict[str, Any]) -> _Response:
        try:
            meta = self._front_matter(str(payload.get("content", "")))
        except (yaml.YAMLError, ValueError) as exc:
            return _json(
                {"errors": [{"message": f"Invalid YAML in metadata: {exc}"}], "warnings": []}, 400
            )
        errors = []
        configs = (meta or {}).get("configs")
        valid = isinstance(configs, list) and all(
            isinstance(c, dict) and c.get("config_name") for c in configs
        )
        if configs is not None and not valid:
            errors.append(
                {"message": '"configs" must be a list of mappings, each with a "config_name"'}
            )
        warnings = [] if meta else [{"message": "empty or missing yaml metadata in repo card"}]
        return _json({"errors": errors, "warnings": warnings}, 400 if errors else 200)

    def _create_repo(self, auth: str | None, payload: dict[str, Any]) -> _Response:
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or self.user
        name = payload.get("name")
        if repo_type not in URL_PREFIX or not name:
            raise _HttpError(400, "create repo needs a name and a valid type")
        repo_id = f"{namespace}/{name}"
        self._require(auth, "write", f"create a {repo_type} under the namespace {namespace}")
        if (repo_type, repo_id) in self._repos:
            repo = self._repos[(repo_type, repo_id)]
            return _json(
                {
                    "error": f"You already created this {repo_type} repo",
                    "url": self._repo_url(repo),
                },
                409,
            )
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = _Repo(repo_type, repo_id, private, _now())
        files = {".gitattributes": _File(INITIAL_GITATTRIBUTES.encode(), lfs=False)}
        repo.branches[DEFAULT_BRANCH] = self._new_commit(
            repo, None, "initial commit", "", files
        ).sha
        self._repos[(repo_type, repo_id)] = repo
        return _json({"url": self._repo_url(repo), "name": repo_id, "id": secrets.token_hex(12)})

    def _delete_repo(self, auth: str | None, payload: dict[str, Any]) -> _Response:
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.user}/{payload.get('name')}"
        self._require(auth, "write", f"delete {repo_id}")
        self._get_repo(repo_type, repo_id)
        del self._repos[(repo_type, repo_id)]
        return _json({})

    def _tree_entry(self, path: str, f: _File) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "file",
            "oid": f.blob_oid,
            "size": len(f.data),
            "path": path,
        }
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}
        return entry

    @staticmethod
    def _folders(files: Mapping[str, _File]) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}

    def _folder_entry(self, commit: _Commit, folder: str) -> dict[str, Any]:
        listing = "".join(
            f"{p}:{f.blob_oid}\n"
            for p, f in sorted(commit.files.items())
            if p.startswith(folder + "/")
        )
        return {
            "type": "directory",
            "oid": hashlib.sha1(listing.encode()).hexdigest(),
            "size": 0,
            "path": folder,
        }

    def _repo_info(self, repo: _Repo, commit: _Commit, params: dict[str, list[str]]) -> _Response:
        blobs = params.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, f in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib.update(size=len(f.data), blobId=f.blob_oid)
                if f.lfs:
                    sib["lfs"] = {
                        "sha256": f.sha256,
                        "size": len(f.data),
                        "pointerSize": len(f.pointer),
                    }
            siblings.append(sib)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        readme = commit.files.get("README.md")
        if readme is not None:
            with contextlib.suppress(yaml.YAMLError, ValueError, UnicodeDecodeError):
                meta = self._front_matter(readme.data.decode())
                if meta:
                    info["cardData"] = meta
        return _json(info)

    def _list_refs(self, repo: _Repo, params: dict[str, list[str]]) -> _Response:
        def ref(kind: str, name: str, sha: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha}

        out: dict[str, Any] = {
            "branches": [ref("heads", n, s) for n, s in sorted(repo.branches.items())],
            "converts": [],
            "tags": [ref("tags", n, s) for n, s in sorted(repo.tags.items())],
        }
        if params.get("include_prs"):
            out["pullRequests"] = []
        return _json(out)

    def _tree(
        self, repo: _Repo, commit: _Commit, folder: str, params: dict[str, list[str]]
    ) -> _Response:
        recursive = params.get("recursive", ["false"])[0].lower() in ("1", "true")
        folder = folder.strip("/")
        folders = self._folders(commit.files)
        if folder and folder not in folders:
            raise _HttpError(404, f"{folder} does not exist on {commit.sha}", code="EntryNotFound")
        prefix = f"{folder}/" if folder else ""

        def wanted(path: str) -> bool:
            return path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :])

        entries = [self._folder_entry(commit, d) for d in sorted(folders) if wanted(d)]
        entries += [self._tree_entry(p, f) for p, f in sorted(commit.files.items()) if wanted(p)]
        return _json(entries)

    def _paths_info(self, repo: _Repo, commit: _Commit, body: bytes) -> _Response:
        form = parse_qs(body.decode())
        folders = self._folders(commit.files)
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                out.append(self._tree_entry(path, commit.files[path]))
            elif path in folders:
                out.append(self._folder_entry(commit, path))
        return _json(out)

    def _list_commits(self, repo: _Repo, commit: _Commit) -> _Response:
        out = []
        current: _Commit | None = commit
        while current is not None:
            out.append(
                {
                    "id": current.sha,
                    "title": current.title,
                    "message": current.message,
                    "authors": [{"user": self.user}],
                    "date": current.date,
                }
            )
            current = repo.commits.get(current.parent) if current.parent else None
        return _json(out)

    def _branch_head(self, repo: _Repo, revision: str) -> tuple[str, _Commit]:
        branch = unquote(revision).removeprefix("refs/heads/")
        if branch not in repo.branches:
            if unquote(revision) in repo.tags or re.fullmatch(r"[0-9a-f]{40}", unquote(revision)):
                raise _HttpError(400, f"Cannot commit to {unquote(revision)}: it is not a branch")
            raise _HttpError(404, f"Invalid rev id: {unquote(revision)}", code="RevisionNotFound")
        return branch, repo.commits[repo.branches[branch]]

    def _preupload(
        self, repo: _Repo, revision: str, payload: dict[str, Any], params: dict[str, list[str]]
    ) -> _Response:
        if params.get("create_pr"):
            raise _HttpError(501, "The test Hub does not support pull requests")
        _, head = self._branch_head(repo, revision)
        patterns = self._lfs_patterns(head)
        files = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample", ""))
            name = path.rsplit("/", 1)[-1]
            lfs = (
                size >= LFS_SIZE_THRESHOLD
                or b"\0" in sample
                or any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)
            )
            out: dict[str, Any] = {
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
            }
            existing = head.files.get(path)
            if existing is not None:
                # The client compares this with its local oid to drop unchanged files.
                out["oid"] = existing.sha256 if existing.lfs else git_blob_oid(existing.data)
            files.append(out)
        return _json({"files": files, "commitOid": head.sha})

    def _commit(
        self, repo: _Repo, revision: str, body: bytes, params: dict[str, list[str]]
    ) -> _Response:
        if params.get("create_pr"):
            raise _HttpError(501, "The test Hub does not support pull requests")
        branch, head = self._branch_head(repo, revision)
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HttpError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and not head.sha.startswith(parent):
            raise _HttpError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = value.get("path", "")
            if key == "file":
                if value.get("encoding") != "base64":
                    raise _HttpError(400, f"unsupported encoding for {path}")
                files[path] = _File(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                data = repo.lfs_objects.get(value.get("oid", ""))
                if data is None:
                    raise _HttpError(
                        400,
                        f"Your push was rejected because an LFS pointer pointed to a file "
                        f"that does not exist: {path}",
                    )
                files[path] = _File(data, lfs=True)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise _HttpError(
                        404, f"A file with this name doesn't exist: {path}", code="EntryNotFound"
                    )
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    raise _HttpError(
                        404, f"A folder with this name doesn't exist: {path}", code="EntryNotFound"
                    )
                for p in doomed:
                    del files[p]
            else:
                raise _HttpError(400, f"unknown commit operation {key!r}")
        commit = self._new_commit(
            repo, head, header.get("summary", ""), header.get("description", ""), files
        )
        repo.branches[branch] = commit.sha
        return _json(
            {
                "success": True,
                "commitOid": commit.sha,
                "commitUrl": f"{self._repo_url(repo)}/commit/{commit.sha}",
                "pullRequestUrl": None,
                "hookOutput": "",
            }
        )

    def _create_tag(self, repo: _Repo, revision: str, payload: dict[str, Any]) -> _Response:
        commit = self._resolve(repo, revision)
        tag = str(payload.get("tag", ""))
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-/]*", tag) or ".." in tag:
            raise _HttpError(400, f"Invalid tag name: {tag!r}")
        if tag in repo.tags:
            raise _HttpError(409, f"Tag {tag} already exists")
        repo.tags[tag] = commit.sha
        return _json({})

    def _delete_tag(self, repo: _Repo, tag: str) -> _Response:
        if repo.tags.pop(unquote(tag), None) is None:
            raise _HttpError(404, f"Invalid rev id: {tag}", code="RevisionNotFound")
        return _json({})

    def _create_branch(self, repo: _Repo, branch: str, payload: dict[str, Any]) -> _Response:
        if branch in repo.branches:
            raise _HttpError(409, f"Reference already exists: refs/heads/{branch}")
        start = payload.get("startingPoint") or DEFAULT_BRANCH
        repo.branches[branch] = self._resolve(repo, start).sha
        return _json({})

    def _lfs_batch(
        self, auth: str | None, repo_type: str, repo_id: str, payload: dict[str, Any]
    ) -> _Response:
        upload = payload.get("operation") == "upload"
        self._require(auth, "write" if upload else "read", f"upload to {repo_type} {repo_id}")
        repo = self._get_repo(repo_type, repo_id)
        if "basic" not in payload.get("transfers", ["basic"]):
            raise _HttpError(422, "The test Hub only offers the basic LFS transfer")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid", "")), int(obj.get("size", 0))
            out: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid):
                out["error"] = {"code": 422, "message": "oid must be a sha256 hex digest"}
            elif upload and oid not in repo.lfs_objects:
                # No "actions" for objects already stored: the client then skips the upload.
                verify_url = (
                    f"{self.endpoint}/{URL_PREFIX[repo_type]}{repo_id}.git/info/lfs/objects/verify"
                )
                out["actions"] = {
                    "upload": {"href": self._cdn_url("upload", repo, oid)},
                    "verify": {"href": verify_url},
                }
            elif not upload:
                out["actions"] = {"download": {"href": self._cdn_url("blob", repo, oid)}}
            objects.append(out)
        return _json(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_verify(
        self, auth: str | None, repo_type: str, repo_id: str, payload: dict[str, Any]
    ) -> _Response:
        self._require(auth, "write", f"upload to {repo_type} {repo_id}")
        repo = self._get_repo(repo_type, repo_id)
        data = repo.lfs_objects.get(str(payload.get("oid")))
        if data is None or len(data) != int(payload.get("size", -1)):
            raise _HttpError(404, "LFS object not found or of the wrong size")
        return _json({"success": True})

    def _resolve_file(
        self, auth: str | None, repo_type: str, repo_id: str, revision: str, path: str
    ) -> _Response:
        self._require(auth, "read", f"read {repo_id}")
        repo = self._get_repo(repo_type, repo_id)
        commit = self._resolve(repo, revision)
        f = commit.files.get(path)
        base = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if f is None:
            raise _HttpError(404, f"Entry not found: {path}", code="EntryNotFound", headers=base)
        if f.lfs:
            # Like the Hub: redirect to a signed URL on another origin, describing the
            # target in X-Linked-* headers, so the client drops its token for the CDN.
            return _Response(
                302,
                b"",
                {
                    **base,
                    "Location": self._cdn_url("blob", repo, f.sha256),
                    "ETag": f'"{f.blob_oid}"',
                    "X-Linked-Etag": f'"{f.sha256}"',
                    "X-Linked-Size": str(len(f.data)),
                },
            )
        return _Response(
            200,
            f.data,
            {**base, "ETag": f'"{f.blob_oid}"', "Content-Type": "application/octet-stream"},
        )


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise _HttpError(400, f"Body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _HttpError(400, "Body must be a JSON object")
    return data


def _maybe_b64_decoded(body: bytes) -> bytes:
    """Decoded base64 'content' fields of an ndjson commit body, so token scans see inside them."""
    out = []
    for line in body.splitlines():
        with contextlib.suppress(ValueError, TypeError, AttributeError, UnicodeDecodeError):
            value = json.loads(line).get("value", {})
            if value.get("encoding") == "base64":
                out.append(base64.b64decode(value["content"]))
    return b"\n".join(out)


def _make_handler(hub: HubServer, server_name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the client expects
        timeout = 30  # idle keep-alive connections end on their own

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log replaces stderr noise

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            # Read the whole body first: an unread body would corrupt the next keep-alive request.
            body = self._read_body()
            authorization = self.headers.get("Authorization")
            try:
                resp = hub.handle(server_name, self.command, self.path, body, authorization)
            except _HttpError as err:
                resp = _json(
                    {"error": err.message},
                    err.status,
                    {"X-Error-Message": _ascii(err.message), **err.headers},
                )
                if err.code:
                    resp.headers["X-Error-Code"] = err.code
            except Exception as exc:  # noqa: BLE001 - a server bug must show up as a 500, not a hang
                resp = _json({"error": f"test Hub internal error: {exc!r}"}, 500)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            hub.requests_log.append(
                LoggedRequest(
                    server_name,
                    self.command,
                    self.path,
                    headers,
                    authorization,
                    body,
                    resp.status,
                    hub._role(authorization),
                )
            )
            payload = resp.body
            if self.command == "GET" and resp.status == 200 and (rng := self.headers.get("Range")):
                payload, resp = _apply_range(rng, payload, resp)
            self.send_response(resp.status)
            for key, value in resp.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Request-Id", secrets.token_hex(8))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

    return Handler


def _apply_range(header: str, data: bytes, resp: _Response) -> tuple[bytes, _Response]:
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return data, resp
    if match.group(1):
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else len(data) - 1
    else:  # suffix range: the last N bytes
        start, end = max(0, len(data) - int(match.group(2))), len(data) - 1
    if start >= len(data):
        return b"", _Response(416, b"", {"Content-Range": f"bytes */{len(data)}"})
    end = min(end, len(data) - 1)
    headers = {**resp.headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"}
    return data[start : end + 1], _Response(206, b"", headers)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")


@contextlib.contextmanager
def run_hub_server(
    tokens: Mapping[str, str], *, user: str = "test-user", anonymous_read: bool = False
) -> Iterator[HubServer]:
    """Serve a fresh, empty test Hub on 127.0.0.1 for the duration of the block.

    ``tokens`` maps token strings to "read" or "write". Requests with no token or an
    unknown one get 401 (unless ``anonymous_read`` lets token-less reads through).
    """
    hub = HubServer(tokens, user=user, anonymous_read=anonymous_read)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@contextlib.contextmanager
def hub_client_env(hub: HubServer, hf_home: str | os.PathLike[str]) -> Iterator[None]:
    """Point ``huggingface_hub`` at ``hub`` even if it was imported already.

    The client reads HF_ENDPOINT, HF_HUB_DISABLE_XET, HF_HOME and friends into module
    constants at import time, so setting the environment alone is too late in a pytest
    session. This sets the variables (for subprocesses) and patches the constants that
    the upload and download paths consult at call time; both are restored on exit.
    """
    home = Path(hf_home)
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_HUB_OFFLINE": "0",
    }
    dropped = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_CO_STAGING")
    saved_env = {k: os.environ.get(k) for k in (*env, *dropped)}
    os.environ.update(env)
    for key in dropped:
        os.environ.pop(key, None)
    patches: list[tuple[Any, str, Any]] = []
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        values = {
            "ENDPOINT": hub.endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": hub.endpoint
            + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_DISABLE_XET": True,
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HUB_OFFLINE": False,
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(home / "hub"),
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        }
        for name, value in values.items():
            if hasattr(constants, name):
                patches.append((constants, name, getattr(constants, name)))
                setattr(constants, name, value)
    ds_config = sys.modules.get("datasets.config")
    if ds_config is not None:  # datasets copies the endpoint at import too
        for name, value in (
            ("HF_ENDPOINT", hub.endpoint),
            ("HUB_DATASETS_URL", hub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"),
        ):
            patches.append((ds_config, name, getattr(ds_config, name)))
            setattr(ds_config, name, value)
    _clear_hf_filesystem_cache()
    try:
        yield
    finally:
        _clear_hf_filesystem_cache()
        for module, name, old in reversed(patches):
            setattr(module, name, old)
        for key, old_value in saved_env.items():
            if old_value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old_value


def _clear_hf_filesystem_cache() -> None:
    # fsspec caches HfFileSystem instances by their arguments, so one made for an
    # earlier server (same args, other port) would otherwise be reused.
    module = sys.modules.get("huggingface_hub.hf_file_system")
    if module is not None:
        module.HfFileSystem.clear_instance_cache()


__all__ = [
    "HubServer",
    "LoggedRequest",
    "git_blob_oid",
    "hub_client_env",
    "lfs_pointer",
    "run_hub_server",
]
