"""`push` with blank settings, as an unset shell variable gives them: `--endpoint ""`, an
HF_ENDPOINT or HF_TOKEN that is set but empty or whitespace, and a recipe's API key of spaces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.errors import UserError
from tests import test_release_push as pushed
from tests.servers.hub_server import HubServer

WRITE = pushed.WRITE
REPO = "test-org/blank-settings"
hub, release = pushed.hub, pushed.release  # test_release_push's fixtures: its loopback Hub and release


@pytest.fixture
def no_hub_client(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HfApi made, by its endpoint: a refused push must make none (none may reach huggingface.co)."""
    import huggingface_hub

    made: list[str] = []

    class Recording(huggingface_hub.HfApi):
        def __init__(self, *args: Any, endpoint: str | None = None, **kwargs: Any) -> None:
            made.append(str(endpoint))
            raise AssertionError(f"a Hub client was made for {endpoint}")

    monkeypatch.setattr(huggingface_hub, "HfApi", Recording)
    return made


@pytest.mark.parametrize(("endpoint", "env", "needle"), [
    ("", None, "--endpoint is empty; pass your Hub's URL"),
    ("  ", "http://127.0.0.1:9", "--endpoint is empty"),
    (None, "", "HF_ENDPOINT is set but blank; set it to your Hub's URL, or unset it"),
    (None, " \t", "HF_ENDPOINT is set but blank"),
    ("hub.example.org", None, "--endpoint 'hub.example.org' is not an http(s) URL"),
])  # fmt: skip
def test_a_blank_endpoint_is_refused_never_huggingface_co(
    release: Path, monkeypatch: pytest.MonkeyPatch, no_hub_client: list[str],
    endpoint: str | None, env: str | None, needle: str,
) -> None:  # fmt: skip
    """`push --endpoint "$HUB"` with HUB unset (or HF_ENDPOINT="") pushed to https://huggingface.co:
    a private release could go to the public Hub. huggingface_hub itself (2.4,
    constants.ENDPOINT = os.getenv("HF_ENDPOINT", default)) does not read a set-but-blank
    HF_ENDPOINT as unset but as the endpoint, so it is not treated as unset here either: it is
    refused, one line, before any client exists."""
    monkeypatch.setenv("HF_TOKEN", WRITE)
    if env is None:
        monkeypatch.delenv("HF_ENDPOINT", raising=False)
    else:
        monkeypatch.setenv("HF_ENDPOINT", env)
    args = ["push", str(release), "--repo", REPO, *(["--endpoint", endpoint] if endpoint is not None else [])]
    res = CliRunner().invoke(app, args)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1, (res.output, repr(res.exception))
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert no_hub_client == []


@pytest.mark.parametrize("token", ["", " ", "\n", " \t\r\n"])
def test_a_blank_token_counts_as_unset(hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch,
                                       token: str) -> None:  # fmt: skip
    """HF_TOKEN=" " was a token: put in the Authorization header, which the HTTP client refused, and
    the line blamed the Hub ("cannot reach <endpoint> (LocalProtocolError); check HF_ENDPOINT").
    Blank is not set (huggingface_hub's _clean_token reads it so), and the line says so."""
    from builder.release.push import run_push

    monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(UserError) as e:
        run_push(release, REPO, endpoint=hub.endpoint)
    state = "is not set" if not token else "is blank (only whitespace), which counts as not set"
    assert str(e.value) == f"HF_TOKEN {state}; export a Hugging Face write token as HF_TOKEN to push"
    assert hub.requests_log == []


def test_a_token_with_a_trailing_newline_pushes(hub: HubServer, release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token read from a file keeps its newline (HF_TOKEN="$(cat t)" drops it, `read` and .env files
    with CRLF do not); it went into the Authorization header: "cannot reach <endpoint>"."""
    from builder.release.push import run_push

    monkeypatch.setenv("HF_TOKEN", f"{WRITE}\r\n")
    res = run_push(release, REPO, endpoint=hub.endpoint)
    assert hub.refs(REPO)["tags"] == {res.tag: res.commit}
    assert hub.token_leaks(WRITE) == []


def test_a_blank_api_key_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recipe's `api_key_env` holding spaces was a key to the teachers' client: `check` (run before
    generate) calls it unset, but `variants`, whose LLM summarizer runs no check, sent it. It is
    unset, and the line says it is blank; a key with a trailing newline is sent without it."""
    from builder.config.generate import Endpoint
    from builder.teachers.openai_backend import api_key

    ep = Endpoint(base_url="http://127.0.0.1:9/v1", api_key_env="BLANK_TEST_API_KEY")
    monkeypatch.setenv("BLANK_TEST_API_KEY", "  ")
    with pytest.raises(UserError, match=r"BLANK_TEST_API_KEY \(the API key for http://127.0.0.1:9/v1\) is blank "
                                        r"\(only whitespace\), which counts as not set; export it"):
        api_key(ep, "r1")
    monkeypatch.setenv("BLANK_TEST_API_KEY", "sk-realkey123\n")
    assert api_key(ep, "r1") == "sk-realkey123"


def test_check_says_a_blank_api_key_is_blank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.check import run_check
    from builder.recipe import load_recipe
    from tests.test_check import teacher, write

    path = write(tmp_path, [teacher("t", "http://127.0.0.1:9/v1", key="BLANK_TEST_API_KEY")])
    monkeypatch.setenv("BLANK_TEST_API_KEY", " \n")
    problems = [p for p in run_check(load_recipe(path)).problems if "BLANK_TEST_API_KEY" in p]
    assert len(problems) == 1 and "is blank (only whitespace), which counts as not set" in problems[0], problems


def test_check_does_not_look_up_the_tag_on_huggingface_co_for_a_blank_hf_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hub_client: list[str]
) -> None:
    from builder.check import published_tag

    monkeypatch.setenv("HF_ENDPOINT", " ")
    found = published_tag("test-org/x", "v0.1.0")
    assert found is not None and found[0] == "warning" and "HF_ENDPOINT is set but blank" in found[1], found
    assert no_hub_client == []


def test_a_blank_redaction_key_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ANSWER_DISTILL_REDACTION_KEY=" " keyed every marker's HMAC with a key anyone can guess (the
    private endpoints it hides could be read back); blank is unset, so the key file is used."""
    from builder.release.redact_recipe import redaction_key

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("ANSWER_DISTILL_REDACTION_KEY", "  ")
    key = redaction_key()
    assert key.strip() and len(key) == 64 and (tmp_path / "answer-distill" / "redaction.key").read_bytes() == key
