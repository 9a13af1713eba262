"""Publish a release folder to the Hugging Face Hub and tag the commit with its version.

The token comes from the environment (HF_TOKEN) only and is handed to `HfApi` in memory.
Error lines are built from the HTTP status and the server's message, never from the
request (whose headers carry the token), and are redacted once more by `UserError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import UserError
from builder.release.manifest import verify_release
from builder.release.versions import read_manifest, tag_for

DEFAULT_ENDPOINT = "https://huggingface.co"
TOKEN_ENV = "HF_TOKEN"


@dataclass
class PushResult:
    repo_id: str
    tag: str
    commit: str
    url: str


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
    }.get(status or 0, "see the Hub's message")
    detail = f" ({server.splitlines()[0][:200]})" if server else ""
    return f"push {repo_id}: {action} failed with HTTP {status or '?'}: {hint}{detail}"


def _tag_taken(repo_id: str, tag: str) -> UserError:
    return UserError(f"push {repo_id}: tag {tag} already exists; a version is published once — "
                     "bump `version` in the recipe and build a new release")


def _tag_exists(api: Any, repo_id: str, tag: str) -> bool:
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    return any(t.name == tag for t in refs.tags)


def run_push(
    release_dir: Path,
    repo_id: str,
    endpoint: str | None = None,
    private: bool = False,
    progress: Any = None,
) -> PushResult:
    release_dir = Path(release_dir)
    problems = verify_release(release_dir)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{release_dir}: not a verified release: {problems[0]}{more}; rebuild it with `release`")
    manifest = read_manifest(release_dir) or {}
    tag = tag_for(manifest["version"])
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise UserError(f"{TOKEN_ENV} is not set; export a Hugging Face write token as {TOKEN_ENV} to push")
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    from huggingface_hub import HfApi  # lazy: the other commands never pay for it
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=token, library_name="answer-distill")
    action = "create_repo"
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
        action = "list_repo_refs"
        if _tag_exists(api, repo_id, tag):
            raise _tag_taken(repo_id, tag)
        if progress:
            progress(f"uploading {release_dir} to {endpoint}/datasets/{repo_id}")
        action = "upload_folder"
        commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=release_dir,
                                   commit_message=f"Release {tag}",
                                   commit_description=f"{manifest.get('recipe_name', '')} {tag}, built "
                                                      f"{manifest.get('built_at', '')} by answer-distill "
                                                      f"{manifest.get('toolkit_version', '')}")
        action = "create_tag"
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
    return PushResult(repo_id, tag, commit.oid, url)
