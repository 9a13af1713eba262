"""`answer-distill check`: every problem a paid build would hit, all at once, before anything is
written — against the loopback OpenAI-compatible server (the real openai client's GET /models)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from builder.check import run_check
from builder.recipe import load_recipe
from tests.servers.openai_server import ServerHandle, run_server

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["deepseek-reasoner", "deepseek-chat"]


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerHandle]:
    with run_server(models=MODELS) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _reset(srv: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    srv.control(reset=True, config={"api_key": None, "models": MODELS})
    monkeypatch.delenv("CHECK_UNSET_KEY", raising=False)


def dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def teacher(name: str, url: str, model: str = "deepseek-reasoner", key: str | None = None) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "model": model, "endpoints": [{"base_url": url, "api_key_env": key}]}


def write(tmp: Path, teachers: list[dict[str, Any]], benchmarks: list[dict[str, Any]] | None = None) -> Path:
    data = tmp / "demo.jsonl"
    data.write_text('{"q": "hello"}\n')
    recipe = {
        "name": "check-test", "version": "0.1.0",
        "sources": [{"name": "demo", "path": str(data), "fields": {"prompt": "q"}, "category": "chat"}],
        "curate": {"decontaminate": {"benchmarks": benchmarks or []}},
        "generate": {"teachers": teachers, "prompts_dir": str(ROOT / "recipes/prompts"),
                     "prices": {m: {"input_per_1m": 1, "output_per_1m": 2} for m in MODELS}},
    }  # fmt: skip
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def foreign_work(tmp: Path) -> Path:
    work = tmp / "w"
    (work / "curate").mkdir(parents=True)
    (work / "curate" / "summary.json").write_text(json.dumps({"recipe": "someone-else", "recipe_sha256": "ab"}))
    return work


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400"}
    env.pop("CHECK_UNSET_KEY", None)
    return subprocess.run([sys.executable, "-m", "builder.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)  # fmt: skip


MISSING_BENCH = {"name": "gsm8k", "path": "nowhere/gsm8k.jsonl", "text_fields": ["question"]}


def five_problems(tmp: Path, srv: ServerHandle) -> tuple[Path, Path, str]:
    dead = dead_url()
    recipe = write(tmp, [teacher("keyless", srv.base_url, key="CHECK_UNSET_KEY"), teacher("dead", dead),
                         teacher("wrong-model", srv.base_url, model="no-such-model")], [MISSING_BENCH])  # fmt: skip
    return recipe, foreign_work(tmp), dead


@pytest.mark.parametrize("command", ["check", "build", "generate"])
def test_five_planted_problems_in_one_run_exit_2_nothing_written(srv: ServerHandle, tmp_path: Path, command: str) -> None:
    recipe, work, dead = five_problems(tmp_path, srv)
    before = snapshot(tmp_path)
    proc = cli(command, str(recipe), "--work", str(work))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    text = "\n".join(errors)
    assert "CHECK_UNSET_KEY" in text and "is not set" in text
    assert f"endpoint {dead}: unreachable" in text
    assert "does not list model 'no-such-model'" in text and "deepseek-reasoner" in text
    assert "work holds recipe 'someone-else'" in text
    if command == "generate":  # generate neither reads benchmarks nor is blocked by them
        assert len(errors) == 4, proc.stderr
    else:
        assert "gsm8k" in text and "file not found" in text
        assert len(errors) == 5, proc.stderr
    assert snapshot(tmp_path) == before  # not even the lock file: nothing written
    assert srv.stats()["by_path"].get("POST /v1/chat/completions", 0) == 0  # nothing paid


def test_each_problem_alone(srv: ServerHandle, tmp_path: Path) -> None:
    cases: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]] | None, bool, str]] = {
        "unset key": ([teacher("t", srv.base_url, key="CHECK_UNSET_KEY")], None, False, "CHECK_UNSET_KEY"),
        "dead endpoint": ([teacher("t", dead_url())], None, False, "unreachable"),
        "unknown model": ([teacher("t", srv.base_url, model="nope")], None, False, "does not list model 'nope'"),
        "missing benchmark": ([teacher("t", srv.base_url)], [MISSING_BENCH], False, "file not found"),
        "foreign work dir": ([teacher("t", srv.base_url)], None, True, "someone-else"),
    }
    for label, (teachers, benches, foreign, needle) in cases.items():
        tmp = tmp_path / label.replace(" ", "-")
        tmp.mkdir()
        work = foreign_work(tmp) if foreign else tmp / "w"
        report = run_check(load_recipe(write(tmp, teachers, benches)), work)
        assert len(report.problems) == 1 and needle in report.problems[0], (label, report.problems)
        assert "\n" not in report.problems[0]


def test_a_sound_recipe_passes_and_names_the_key_never_its_value(
    srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv.control(config={"api_key": "sk-right-key-123456"})
    monkeypatch.setenv("CHECK_GOOD_KEY", "sk-right-key-123456")
    optional = {"name": "gpqa_diamond", "path": "absent/gpqa.jsonl", "text_fields": ["question"], "optional": True}
    recipe = write(tmp_path, [teacher("t", srv.base_url, key="CHECK_GOOD_KEY")], [optional])
    proc = cli("check", str(recipe), "--work", str(tmp_path / "new"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "API key CHECK_GOOD_KEY is set" in out and "sk-right-key-123456" not in out
    assert f"{srv.base_url} serves deepseek-reasoner" in out
    assert "skipped: decontamination against gpqa_diamond" in proc.stderr  # loud, not silent
    assert srv.stats()["by_path"].get("GET /v1/models", 0) == 1


def test_refused_key_and_not_a_work_dir(srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv.control(config={"api_key": "sk-right-key-123456"})
    monkeypatch.setenv("CHECK_BAD_KEY", "sk-wrong-key-654321")
    work = tmp_path / "home"
    work.mkdir()
    (work / "thesis.tex").write_text("mine")
    report = run_check(load_recipe(write(tmp_path, [teacher("t", srv.base_url, key="CHECK_BAD_KEY")])), work)
    assert len(report.problems) == 2, report.problems
    assert "HTTP 401" in report.problems[0] and "CHECK_BAD_KEY" in report.problems[0]
    assert "sk-wrong" not in " ".join(report.problems)
    assert "is not a work directory (thesis.tex)" in report.problems[1]


def test_version_already_released_on_the_hub(srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    from tests.servers.hub_server import hub_client_env, run_hub_server

    path = write(tmp_path, [teacher("t", srv.base_url)])
    path.write_text(path.read_text() + "release: {repo_id: test-org/released}\n")
    recipe = load_recipe(path)
    token = "hf_writeTokenForCheckTests"
    with run_hub_server(tokens={token: "write"}) as hub, hub_client_env(hub, tmp_path / "hf_home"):
        monkeypatch.setenv("HF_TOKEN", token)  # as `push` reads it
        assert run_check(recipe).problems == []  # the repo does not exist yet
        api = HfApi(endpoint=hub.endpoint, token=token)
        api.create_repo("test-org/released", repo_type="dataset")
        api.upload_file(path_or_fileobj=b"data", path_in_repo="x.txt", repo_id="test-org/released", repo_type="dataset")
        api.create_tag("test-org/released", tag="v0.2.0", repo_type="dataset")
        assert run_check(recipe).problems == []  # another version's tag
        api.create_tag("test-org/released", tag="v0.1.0", repo_type="dataset")
        report = run_check(recipe)
        assert len(report.problems) == 1, (report.problems, report.warnings)
        problem = report.problems[0]
    assert "v0.1.0 is already released" in problem and "bump `version`" in problem


def test_an_unreachable_hub_only_warns_so_offline_builds_run(
    srv: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, [teacher("t", srv.base_url)])
    path.write_text(path.read_text() + "release: {repo_id: test-org/somewhere}\n")
    monkeypatch.setenv("HF_ENDPOINT", dead_url())
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: a test run earlier in this process
    # (test_curate_inputs) may have imported it offline.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    report = run_check(load_recipe(path))
    assert report.problems == [], report.problems
    assert any("could not reach" in w and "`push` will check" in w for w in report.warnings), report.warnings


def test_a_local_release_of_this_version_from_another_recipe_is_a_warning(srv: ServerHandle, tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, [teacher("t", srv.base_url)]))
    release = tmp_path / "w" / "release"
    release.mkdir(parents=True)
    manifest = {"version": "0.1.0", "recipe": {"sha256": "x", "source_sha256": "other"}}
    (release / "manifest.json").write_text(json.dumps(manifest))
    report = run_check(recipe, tmp_path / "w")
    assert report.problems == [] and any("already holds v0.1.0" in w and "bump `version`" in w for w in report.warnings)
    manifest["recipe"]["source_sha256"] = recipe.sha256  # the same recipe: `release` itself decides
    (release / "manifest.json").write_text(json.dumps(manifest))
    assert not any("already holds" in w for w in run_check(recipe, tmp_path / "w").warnings)


def test_plan_reports_problems_and_still_prints_the_plan(srv: ServerHandle, tmp_path: Path) -> None:
    recipe = write(tmp_path, [teacher("t", srv.base_url, key="CHECK_UNSET_KEY")])
    proc = cli("plan", str(recipe))
    assert proc.returncode == 0, proc.stderr
    assert "problem:" in proc.stderr and "CHECK_UNSET_KEY" in proc.stderr
    assert "generation estimate" in proc.stdout


def test_plan_lists_an_absent_optional_benchmark_as_skipped(tmp_path: Path) -> None:
    from builder.plan import plan_data

    bench = tmp_path / "gsm8k.jsonl"
    bench.write_text('{"question": "What is 2 + 2?"}\n')
    present = {"name": "gsm8k", "path": str(bench), "text_fields": ["question"]}
    absent = {"name": "gpqa_diamond", "path": "absent/gpqa.jsonl", "text_fields": ["question"], "optional": True}
    recipe = load_recipe(write(tmp_path, [], [present, absent]))
    dec = plan_data(recipe)["decontaminate"]
    assert dec["benchmarks"] == ["gsm8k"] and dec["skipped"] == ["gpqa_diamond"]
    assert run_check(recipe).skipped_benchmarks == [f"gpqa_diamond ({tmp_path / 'absent/gpqa.jsonl'})"]


def test_curate_records_and_says_which_benchmarks_it_skipped(tmp_path: Path) -> None:
    from builder.curate.stage import run_curate
    from builder.tables import CurateSummary
    from builder.workdir import WorkDir

    absent = {"name": "aime24", "path": "absent/aime.jsonl", "text_fields": ["problem"], "optional": True}
    recipe = load_recipe(write(tmp_path, [], [absent]))
    recipe.curate.near_dedupe.enabled = False
    res = run_curate(recipe, WorkDir(tmp_path / "w"))
    assert any("aime24 skipped" in w for w in res.warnings)
    summary = WorkDir(tmp_path / "w").read_summary(CurateSummary)
    assert summary is not None and summary.decontamination.skipped_absent == ["aime24"]
    assert any("aime24 skipped" in w for w in summary.warnings)


def test_unset_key_is_one_line_from_the_stage_with_several_tasks(tmp_path: Path) -> None:
    """Without `check` in front (a library call), the stage still says it in one line, before
    any datatrove task starts or any store segment is written."""
    from builder.errors import UserError
    from builder.generate.stage import run_generate
    from builder.workdir import WorkDir
    from tests.generate_helpers import write_prompts, write_recipe

    work = tmp_path / "w"
    write_prompts(work, [{"text": f"q{i}"} for i in range(4)])
    t = teacher("r1", dead_url(), key="CHECK_UNSET_KEY")
    recipe = load_recipe(write_recipe(tmp_path, {"teachers": [t]}, executor={"kind": "local", "tasks": 2, "workers": 2}))
    with pytest.raises(UserError) as e:
        run_generate(recipe, WorkDir(work))
    assert "CHECK_UNSET_KEY" in str(e.value) and "is not set" in str(e.value) and "\n" not in str(e.value)
    assert not list((work / "generate").rglob("*.jsonl"))


def test_unknown_variant_names_are_one_line_at_check_time(srv: ServerHandle, tmp_path: Path) -> None:
    recipe = write(tmp_path, [teacher("t", srv.base_url)])
    data = yaml.safe_load(recipe.read_text())
    data["variants"] = {"build": ["answer", "fulll"], "format_gate": {"variants": ["think_sumary"]}}
    data["quality"] = {"mix": {"variants": ["answr"]}}
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    before = snapshot(tmp_path)
    proc = cli("check", str(recipe), "--work", str(tmp_path / "w"))
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    for key, name in (("variants.build", "fulll"), ("variants.format_gate.variants", "think_sumary"),
                      ("quality.mix.variants", "answr")):  # fmt: skip
        assert f"{key}: unknown variant(s) ['{name}']" in line, line
    assert snapshot(tmp_path) == before
