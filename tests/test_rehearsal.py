"""benchmarks/rehearsal.py: its generator (small N), its recipe, and its accounting on a real build.

The full rehearsal takes minutes even at 2,000 rows; here the same functions run on pieces:
the generator writes 400 rows (unique ids, a reply per row, every planted kind and shape), the
recipe it writes loads as a typed Recipe, and `accounting` + `summary` read the session's
sample build (tests/conftest.py) — and catch a ledger that lost a row.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import rehearsal  # noqa: E402
import rehearsal_data  # noqa: E402

needs_corpus = pytest.mark.skipif(
    not rehearsal_data.CORPUS.is_dir(), reason="the rehearsal's prompts come from ../shared/corpus (absent)"
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> rehearsal_data.Generated:
    return rehearsal_data.write_inputs(400, tmp_path_factory.mktemp("rehearsal-inputs"), seed=3)


@needs_corpus
def test_generator_rows_replies_and_planted_work(generated: rehearsal_data.Generated) -> None:
    ids: list[str] = []
    texts: list[str] = []
    for name, (prompts, replies) in generated.sources.items():
        rows = [json.loads(line) for line in prompts.read_text(encoding="utf-8").split("\n") if line]
        recs = [json.loads(line) for line in replies.read_text(encoding="utf-8").split("\n") if line]
        assert [r["id"] for r in rows] == [r["id"] for r in recs], name  # one reply per prompt, same order
        ids += [r["id"] for r in rows]
        texts += [r["prompt"] if "prompt" in r else json.dumps(r["messages"], ensure_ascii=False) for r in rows]
        if name == "chat":
            assert all(isinstance(r["control"], str) and r["control"] for r in recs)
        if name == "code":
            assert all(r["tests"] for r in rows)
    assert len(ids) == len(set(ids)) == generated.rows >= 400
    # base rows are distinct texts; only planted duplicates may repeat a text (after folding)
    assert len(set(texts)) >= generated.kinds["base"]
    assert {"base", "exact_dup", "near_dup", "leak"} <= set(generated.kinds)
    assert set(generated.shapes) >= {"split", "inline_answer_tags", "truncated", "null_content"}
    counts = {n: sum(1 for _ in p.open()) for n, (p, _) in generated.sources.items()}
    assert counts["chat"] > counts["math"] > counts["code"] > 0  # roughly the paper's mix


@needs_corpus
def test_generator_is_seeded(tmp_path: Path, generated: rehearsal_data.Generated) -> None:
    again = rehearsal_data.write_inputs(400, tmp_path, seed=3)
    for name, (prompts, replies) in again.sources.items():
        assert prompts.read_bytes() == generated.sources[name][0].read_bytes()
        assert replies.read_bytes() == generated.sources[name][1].read_bytes()


@needs_corpus
def test_recipe_loads(tmp_path: Path, generated: rehearsal_data.Generated) -> None:
    from builder.recipe import load_recipe

    recipe = load_recipe(rehearsal.recipe(generated, tmp_path))
    assert {s.name for s in recipe.sources} == set(rehearsal_data.SHARES)
    assert [t.kind for t in recipe.generate.teachers] == ["import", "import"]


def test_accounting_and_json_on_the_sample_build(sample_release: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(sample_release.parent, work, ignore=shutil.ignore_patterns(".lock"))
    stages = {}
    for stage in rehearsal.STAGES:
        acc = rehearsal.accounting(work, stage, work / "release")
        assert acc["ok"], (stage, acc)
        assert acc["rows_in"] == acc["kept"] + acc["dropped"] > 0
        stages[stage] = {"wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mb": 10.0, **acc}
    out = rehearsal.summary(rehearsal_data.Generated({}, 743), stages, 0.0, [0.0, 0.0, 0.0])
    assert out["accounting_ok"] is True
    assert {"rows", "total_s", "peak_rss_mb", "accounting_ok", "stages", "load_avg"} <= set(out)
    for s in out["stages"].values():
        assert {"wall_s", "cpu_s", "peak_rss_mb", "rows_in", "kept", "dropped"} <= set(s)
    json.dumps(out)
    # A stage that failed leaves the build incomplete: never accounting_ok.
    partial = {k: v for k, v in stages.items() if k in ("curate", "generate")}
    assert rehearsal.summary(rehearsal_data.Generated({}, 743), partial, 0.0, [0.0] * 3)["accounting_ok"] is False

    # A ledger that lost one row no longer adds up, and the summary says so.
    ledger = work / "responses" / "ledger.parquet"
    table = pq.read_table(ledger)
    pq.write_table(table.slice(1), ledger)
    broken = rehearsal.accounting(work, "responses", work / "release")
    assert broken["ok"] is False
    stages["responses"].update(broken)
    assert rehearsal.summary(rehearsal_data.Generated({}, 743), stages, 0.0, [0.0] * 3)["accounting_ok"] is False


def test_resume_keeps_measured_stages_and_reruns_from_the_first_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--resume: inputs and stages measured without error are kept; the first failed stage and every
    later one run again, their outputs removed first. Stages are stubbed: this checks the bookkeeping."""
    ran: list[str] = []
    fail = {"variants"}

    def fake_inputs(n: int, folder: Path, seed: int = 0) -> rehearsal_data.Generated:
        folder.mkdir(parents=True, exist_ok=True)
        srcs = {c: (folder / f"{c}.jsonl", folder / f"{c}.replies.jsonl") for c in rehearsal_data.SHARES}
        ran.append("inputs")
        return rehearsal_data.Generated(srcs, n)

    def fake_stage(stage: str, recipe_path: Path, work: Path, logs: Path) -> dict:
        assert not (work / stage).exists()  # a re-run stage starts from nothing
        (work / stage).mkdir(parents=True)
        ran.append(stage)
        res = {"wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mb": 1.0}
        return {**res, "error": "exit 1: boom"} if stage in fail else res

    monkeypatch.setattr(rehearsal, "write_inputs", fake_inputs)
    monkeypatch.setattr(rehearsal, "run_stage", fake_stage)
    monkeypatch.setattr(rehearsal, "accounting", lambda work, stage, rel: {"rows_in": 1, "kept": 1, "dropped": 0, "ok": True})
    (tmp_path / "logs").mkdir()
    for stage in rehearsal.STAGES:
        (tmp_path / "logs" / f"{stage}.err").write_text("boom\n")
    first = rehearsal.rehearse(10, 0, tmp_path, log=lambda s: None, resume=True, stop_after="release")
    assert ran == ["inputs", "curate", "generate", "responses", "variants"] and not first["complete"]
    assert first["stages"]["curate"]["commit"]
    ran.clear()
    fail.clear()
    (tmp_path / "work" / "release").mkdir()  # a stale later output is removed too
    again = rehearsal.rehearse(10, 0, tmp_path, log=lambda s: None, resume=True)
    assert ran == ["variants", "release"]  # neither the inputs nor the three measured stages again
    assert again["complete"] and again["accounting_ok"] and set(again["stages"]) == set(rehearsal.STAGES)
    ran.clear()
    other_seed = rehearsal.rehearse(10, 1, tmp_path, log=lambda s: None, resume=True, stop_after="curate")
    assert ran == ["inputs", "curate"] and list(other_seed["stages"]) == ["curate"]  # another seed: afresh


def test_cpu_group_counts_short_lived_grandchildren() -> None:
    """The stage's CPU includes processes it never reaps itself (sandboxes run by its workers)."""
    import os
    import subprocess

    group = rehearsal._CpuGroup(f"answer-distill-test-{os.getpid()}")
    if group.path is None:
        pytest.skip("no writable cpuacct cgroup on this machine (the rehearsal falls back to sampling)")
    try:
        burn = "x = 0\nfor i in range(4_000_000): x += i"
        child = f"import subprocess, sys; [subprocess.run([sys.executable, '-c', {burn!r}]) for _ in range(3)]"
        subprocess.run([sys.executable, "-c", child], preexec_fn=group.join, check=True)
        spent = group.seconds()
    finally:
        group.close()
    assert spent is not None and spent > 0.3  # three grandchildren of ~0.15 CPU-s each, at least


def test_tree_memory_leaves_out_unexeced_children_and_splits_shared_pages() -> None:
    """A child with its parent's command line and the very same RSS (between fork and exec) is a
    phantom copy; a forked child that has grown (a worker) is counted; PSS is at most RSS."""
    import psutil
    from memtree import tree_memory, unexeced

    class Fake:
        def __init__(self, pid: int, ppid: int) -> None:
            self.pid, self._ppid = pid, ppid

        def ppid(self) -> int:
            return self._ppid

    rss = {1: 600, 2: 600, 3: 900}
    cmd = {1: ["python", "-c", "w"], 2: ["python", "-c", "w"], 3: ["python", "-c", "w"]}
    assert unexeced(Fake(2, 1), rss, cmd)  # same cmdline, same RSS: not exec'd yet
    assert not unexeced(Fake(3, 1), rss, cmd)  # a worker that grew
    assert not unexeced(Fake(1, 0), rss, cmd)  # the root: no parent in the tree
    assert not unexeced(Fake(2, 1), rss, {**cmd, 2: ["sh", "-c", "x"]})  # exec'd
    me = psutil.Process()
    r, p = tree_memory([me], pss=True)
    assert r > 0 and 0 < p <= r  # PSS never above RSS


def test_resume_without_a_kept_folder_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        rehearsal.main(["--resume", "--rows", "10"])
    assert e.value.code == 2 and "--resume needs --keep DIR" in capsys.readouterr().err


def test_descendants_find_grandchildren_as_psutil_does() -> None:
    """The sampler's /proc children walk sees the same tree as psutil's whole-machine scan."""
    import subprocess

    import psutil
    from memtree import descendants

    child = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '5'])"])
    try:
        me = psutil.Process()
        for _ in range(100):  # until the grandchild is there
            if len(me.children(recursive=True)) >= 2:
                break
            time.sleep(0.05)
        want = {p.pid for p in me.children(recursive=True)}
        got = {p.pid for p in descendants(me)}
        assert len(want) >= 2 and got == {me.pid, *want}
    finally:
        for p in psutil.Process(child.pid).children(recursive=True):
            p.kill()
        child.kill()
        child.wait()
