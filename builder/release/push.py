"""Publish a release folder to the Hugging Face Hub and tag the commit with its version.

A tag is exactly its release folder: one commit adds every file of the release and deletes
every file the repo's main branch holds that the release does not (an earlier release's
shards would otherwise match this release's `data_files` globs), keeping `.gitattributes`.
The commit names main's head as its parent, so a push that raced another one fails instead
of leaving stray files. A tag is never moved: a version whose tag exists is refused.

The token comes from the environment (HF_TOKEN) only and is handed to `HfApi` in memory.
Error lines are built from the HTTP status and the server's message, never from the
request (whose headers carry the token), and are redacted once more by `UserError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from builder.config.release import repo_id_problem
from builder.errors import UserError, unset_state
from builder.release import card
from builder.release.manifest import MANIFEST, card_metadata, verify_release
from builder.release.versions import is_semver, read_manifest, tag_for

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_ENV = "HF_TOKEN"
ENDPOINT_ENV = "HF_ENDPOINT"
BRANCH = "main"
KEEP = frozenset({".gitattributes"})  # repo files a release never deletes (the Hub's LFS rules)


@dataclass
class PushResult:
    repo_id: str
    tag: str
    commit: str
    url: str
    deleted: int = 0  # files of an earlier release removed by this push's commit
    warnings: list[str] = field(default_factory=list)


def _shown(text: str) -> str:
    """A user's string on one line that rich markup cannot eat (no raw brackets, no newlines)."""
    return ascii(text[:120]).replace("[", "\\x5b").replace("]", "\\x5d")


def check_repo_id(repo_id: str, command: str = "push") -> None:
    if repo_id_problem(repo_id):
        raise UserError(f"{command}: {_shown(repo_id)} is not a Hub dataset id; pass --repo org/name "
                        "(letters, digits, '-', '_', '.'; no '--' or '..')")


def card_problems(folder: Path) -> list[str]:
    """Every config the card (README front matter `configs`) declares must have data files in
    the folder, and every config the manifest counts must be declared there."""
    readme = folder / "README.md"
    if not readme.is_file():
        return ["README.md: missing; the card declares the release's configs"]
    try:
        declared = card_metadata(readme).get("configs")
    except (yaml.YAMLError, ValueError, AttributeError, TypeError):
        return ["README.md: the card's metadata block is not valid YAML"]
    if not isinstance(declared, list) or not declared:
        return ["README.md: the card declares no `configs`"]
    counted = (read_manifest(folder) or {}).get("configs") or {}
    problems: list[str] = []
    names: set[str] = set()
    for entry in declared:
        name = entry.get("config_name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            problems.append("README.md: a `configs` entry has no config_name")
            continue
        names.add(name)
        patterns = _patterns(entry.get("data_files"))
        if not patterns:
            problems.append(f"README.md: config {name} lists no data_files")
        for pattern in patterns:
            if not _matches(folder, pattern):
                problems.append(f"config {name}: no file matches {pattern}; the release is missing that config")
        if name not in counted:
            problems.append(f"config {name}: declared in the card but not in {MANIFEST}")
    problems += [f"config {name}: in {MANIFEST} but not declared in the card's configs"
                 for name in sorted(set(counted) - names)]
    return problems


def _patterns(data_files: Any) -> list[str]:
    """The path globs of a card config's data_files (a string, a list, or split mappings)."""
    items = data_files if isinstance(data_files, list) else [data_files]
    out: list[str] = []
    for item in items:
        paths = item.get("path") if isinstance(item, dict) else item
        out += [p for p in (paths if isinstance(paths, list) else [paths]) if isinstance(p, str) and p]
    return out


def _matches(folder: Path, pattern: str) -> bool:
    if PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
        return False
    try:
        return any(p.is_file() for p in folder.glob(pattern))
    except (ValueError, NotImplementedError):  # a pattern Path.glob refuses
        return False


def _http_line(e: Exception, repo_id: str, action: str) -> str:
    """One line from a huggingface_hub error: status + server message, no request details."""
    response = getattr(e, "response", None)
    status = getattr(response, "status_code", None)
    server = (getattr(e, "server_message", None) or "").strip()
    hint = {
        401: f"the Hub rejected the token; export a valid write token as {TOKEN_ENV}",
        403: f"the token may not write to {repo_id}; use a write token with access to that namespace",
        404: f"{repo_id} or its revision was not found",
        409: "it already exists",
        412: f"{BRANCH} moved while pushing (another push?); nothing was changed, push again",
    }.get(status or 0, "see the Hub's message")
    detail = f" ({server.splitlines()[0][:200]})" if server else ""
    return f"push {repo_id}: {action} failed with HTTP {status or '?'}: {hint}{detail}"


def _tag_taken(repo_id: str, tag: str) -> UserError:
    return UserError(f"push {repo_id}: tag {tag} already exists; a version is published once — "
                     "bump `version` in the recipe and build a new release")


def hub_endpoint(explicit: str | None = None) -> str:
    """--endpoint, else $HF_ENDPOINT, else huggingface.co. An empty or blank one (`--endpoint $UNSET`) is
    refused: falling back would send a private release to the public Hub. huggingface_hub does not read a
    set-but-blank HF_ENDPOINT as unset either (constants.ENDPOINT = os.getenv("HF_ENDPOINT", default))."""
    for value, what in ((explicit, "--endpoint"), (os.environ.get(ENDPOINT_ENV), ENDPOINT_ENV)):
        if value is None:
            continue
        url = value.strip().rstrip("/")
        if not url and what == ENDPOINT_ENV:
            raise UserError(f"{ENDPOINT_ENV} is set but blank; set it to your Hub's URL, or unset it to push to "
                            f"{DEFAULT_ENDPOINT}")
        if not url:
            raise UserError(f"--endpoint is empty; pass your Hub's URL (is a shell variable unset?), or leave it "
                            f"out for ${ENDPOINT_ENV} or {DEFAULT_ENDPOINT}")
        if not url.startswith(("http://", "https://")):
            raise UserError(f"{what} {_shown(url)} is not an http(s) URL; pass the Hub's URL, e.g. {DEFAULT_ENDPOINT}")
        return url
    return DEFAULT_ENDPOINT


def hub_token() -> str | None:
    """$HF_TOKEN without surrounding whitespace; None when unset or blank (as huggingface_hub's
    _clean_token reads it: a token of spaces or a lone newline is no token)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def _release_files(release_dir: Path) -> list[str]:
    """The files a verified release holds: those its manifest lists, and the manifest."""
    manifest = read_manifest(release_dir) or {}
    return sorted({*manifest.get("files", {}), MANIFEST})


def run_push(
    release_dir: Path,
    repo_id: str | None,
    endpoint: str | None = None,
    private: bool = False,
    progress: Any = None,
) -> PushResult:
    """`repo_id` None: the repo id the release was built for (its manifest's `repo_id`)."""
    release_dir = Path(release_dir)
    endpoint = hub_endpoint(endpoint)  # before anything else: a blank one must never mean huggingface.co
    built = read_manifest(release_dir)
    named = built.get("repo_id") if isinstance(built, dict) else None  # a malformed manifest: verify says so
    if repo_id is None and built is None:  # not a release at all: say so, not that it names no repo
        what = ("does not exist" if not release_dir.exists() else "is a file, not a folder"
                if not release_dir.is_dir() else "holds no readable manifest.json")  # fmt: skip
        raise UserError(f"{release_dir}: {what}; pass a release folder written by `answer-distill release`")
    if repo_id is None:
        if not isinstance(named, str) or not named:
            raise UserError(f"{release_dir}: the release names no repo id; pass --repo org/name")
        repo_id = named
    check_repo_id(repo_id)
    problems = verify_release(release_dir)
    problems = problems or card_problems(release_dir)
    if not problems and (release_dir / "README.md").is_file():
        problems = card.problems((release_dir / "README.md").read_text(errors="replace"))
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{release_dir}: not a verified release: {problems[0]}{more}; rebuild it with `release`")
    manifest = read_manifest(release_dir) or {}
    if not is_semver(manifest["version"]):  # checked before any upload: the tag comes last
        raise UserError(f"{release_dir}: not a verified release: {MANIFEST} version "
                        f"{_shown(manifest['version'])} is not semver; rebuild it with `release`")
    tag = tag_for(manifest["version"])
    token = hub_token()
    if token is None:
        raise UserError(f"{TOKEN_ENV} {unset_state(os.environ.get(TOKEN_ENV))}; export a Hugging Face write token as "
                        f"{TOKEN_ENV} to push")

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi  # lazy: other commands never pay
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token, library_name="answer-distill")
    files = _release_files(release_dir)
    action = "create_repo"
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
        action = "list_repo_refs"
        refs = api.list_repo_refs(repo_id, repo_type="dataset")
        if any(t.name == tag for t in refs.tags):
            raise _tag_taken(repo_id, tag)
        head = next((b.target_commit for b in refs.branches if b.name == BRANCH), None)
        action = "list_repo_files"
        present = api.list_repo_files(repo_id, repo_type="dataset", revision=head or BRANCH)
        stale = sorted(set(present) - set(files) - KEEP)
        if progress:
            progress(f"uploading {release_dir} to {endpoint}/datasets/{repo_id}"
                     + (f" (removing {len(stale)} files of an earlier release)" if stale else ""))
        operations: list[Any] = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(release_dir / rel))
                                 for rel in files]
        operations += [CommitOperationDelete(path_in_repo=rel, is_folder=False) for rel in stale]
        action = "create_commit"
        commit = api.create_commit(repo_id, operations, repo_type="dataset", revision=BRANCH, parent_commit=head,
                                   commit_message=f"Release {tag}",
                                   commit_description=f"{manifest.get('recipe_name', '')} {tag}, built "
                                                      f"{manifest.get('built_at', '')} by answer-distill "
                                                      f"{manifest.get('toolkit_version', '')}")
        action = "create_tag"
        # exist_ok stays False: a tag that appeared meanwhile is a 409, never moved.
        api.create_tag(repo_id, tag=tag, revision=commit.oid, repo_type="dataset", tag_message=f"Release {tag}")
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if action == "create_tag" and status == 409:
            raise _tag_taken(repo_id, tag) from None
        raise UserError(_http_line(e, repo_id, action)) from None
    except ValueError as e:  # e.g. the client refusing invalid card metadata before upload
        raise UserError(f"push {repo_id}: {action}: {str(e).splitlines()[0][:200]}") from None
    except Exception as e:
        # Connection refused, DNS, TLS (the client's transport errors are not OSErrors).
        if not any(c.__name__ in ("TransportError", "OSError") for c in type(e).__mro__):
            raise
        raise UserError(f"push {repo_id}: cannot reach {endpoint} ({type(e).__name__}); check HF_ENDPOINT / --endpoint") from None
    url = f"{endpoint}/datasets/{repo_id}/tree/{tag}"
    notes = []
    if named != repo_id:
        notes.append(f"the card's load snippet and citation name {named or 'a placeholder'}, not {repo_id}; "
                     f"build the next version with `release --repo {repo_id}`")
    return PushResult(repo_id, tag, commit.oid, url, deleted=len(stale), warnings=notes)
