"""A planted API key never reaches a file under the work dir, a task log or stderr: not when a
generate task crashes under `tasks: 2`, not when a reply echoes the key, and not when the key's
variable is named without KEY/TOKEN (`DS_CRED`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.generate.stage import run_generate
from builder.recipe import load_recipe
from builder.workdir import WorkDir
from tests.generate_helpers import openai_teacher, write_prompts, write_recipe
from tests.servers.openai_server import ServerHandle, run_server

KEY = "sk-plantedkey-0123456789abcdef"
ENV = "DS_CRED"  # no KEY/TOKEN/SECRET in the name: only the recipe says it holds a key


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(tokens_per_reply=60) as handle:
        yield handle


def _occurrences(root: Path, needle: str) -> list[str]:
    found = []
    for f in root.rglob("*"):
        if f.is_file() and needle.encode() in f.read_bytes():
            found.append(str(f.relative_to(root)))
    return found


def _teacher(base_url: str) -> dict[str, object]:
    t = openai_teacher(base_url, tasks=2)
    t["endpoints"] = [{"base_url": base_url, "api_key_env": ENV}]
    t["limits"] = {**t["limits"], "max_attempts": 1}  # type: ignore[dict-item]
    return t


def test_a_crashing_task_under_two_tasks_logs_no_key(srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    # A line break inside the value (two lines pasted; a trailing one is stripped) makes the HTTP
    # client raise inside the task.
    monkeypatch.setenv(ENV, KEY + "\nsecond line")
    srv.control(reset=True, config={"api_key": None})
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"Question {i} about plums."} for i in range(6)])
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [_teacher(srv.base_url)]},
                                      executor={"kind": "local", "tasks": 2, "workers": 2}))  # fmt: skip
    with pytest.raises(Exception) as e:  # noqa: B017 - whatever the failure, it must not carry the key
        run_generate(recipe, WorkDir(work))
    out, err = capfd.readouterr()
    assert KEY not in str(e.value) and KEY not in out and KEY not in err
    logs = list((work / "generate" / "logs").rglob("*.log"))
    assert logs, "the tasks wrote no logs: the crash did not happen under datatrove"
    assert _occurrences(work, KEY) == []


def test_a_reply_echoing_the_key_is_redacted_and_quarantined(srv: ServerHandle, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from builder.responses.stage import run_responses
    from tests.fixtures.stages import sample_recipe

    monkeypatch.setenv(ENV, KEY)
    srv.control(reset=True, config={"api_key": KEY})
    texts = [f"Question {i} about figs." for i in range(4)]
    srv.control(script=[{"match": texts[0], "steps": [{"content": f"Sure. Your key is {KEY}, keep it safe.",
                                                       "reasoning_content": f"The header said {KEY}."}]}])  # fmt: skip
    work = tmp_path / "w"
    write_prompts(work, [{"text": t} for t in texts])
    teacher = {**_teacher(srv.base_url), "tasks": 1}
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [teacher]}))
    run_generate(recipe, WorkDir(work))
    res = run_responses(sample_recipe(), WorkDir(work))
    assert res.reasons.get("secret_in_reply") == 1
    assert _occurrences(work, KEY) == []


def test_a_key_inside_the_base_url_reaches_no_file_or_error(srv: ServerHandle, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A key written into base_url: as user info (https://user:KEY@host/v1) it is refused when the
    recipe loads, without echoing it (the aiohttp client raised a ValueError mid-generate); as a
    query value (?api_key=KEY) the stopped teacher's message, kept in the stage summary and
    ledger, named it whole."""
    from builder.errors import UserError

    password = "urlpass-0123456789abcdef"
    userinfo = {**_teacher(srv.base_url.replace("://", f"://builder:{password}@")), "tasks": 1}
    with pytest.raises(UserError, match=r"endpoints\[0\].base_url: base_url holds credentials") as e:
        load_recipe(write_recipe(tmp_path, {"teachers": [userinfo]}))
    assert password not in str(e.value)
    monkeypatch.setenv(ENV, "the-key")
    srv.control(reset=True, config={"api_key": "the-key"})
    teacher = {**_teacher(f"{srv.base_url}?api_key={password}"), "tasks": 1}
    teacher["limits"] = {**teacher["limits"], "fail_fast_after": 1}  # type: ignore[dict-item]
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"Question {i} about pears."} for i in range(3)])
    with pytest.raises(UserError, match=r"v1\?api_key=\*\*\* does not serve model") as stopped:
        run_generate(load_recipe(write_recipe(tmp_path, {"teachers": [teacher]})), WorkDir(work))
    assert password not in str(stopped.value)
    assert _occurrences(work, password) == []
