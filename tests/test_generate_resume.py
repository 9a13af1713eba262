"""Kill generation at any moment and re-run: nothing stored is requested again, nothing is lost.

One test kills a real `answer-distill generate` subprocess with SIGKILL mid-run; another
simulates a crash that tore the store's last record. The loopback server's per-prompt
request counts prove which prompts were sent twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from builder.generate.stage import run_generate
from builder.generate.todo import config_of, load_prompts, teacher_items
from builder.recipe import load_recipe
from builder.teachers.store import latest
from builder.workdir import WorkDir
from tests.generate_helpers import REPO, openai_teacher, write_prompts, write_recipe
from tests.servers.openai_server import prompt_hash, run_server, run_server_process


def _hashes(recipe_path: Path, work: Path) -> dict[str, str]:
    """generation_id → the server's hash of the messages we send for it."""
    recipe = load_recipe(recipe_path)
    cfg = config_of(recipe)
    items = teacher_items(recipe, cfg, cfg.teachers[0], load_prompts(WorkDir(work)))
    return {it.generation_id: prompt_hash(it.messages) for it in items}


def _stored_ok(work: Path) -> set[str]:
    return {g for g, e in latest(work / "generate" / "store" / "r1").items() if e.entry.status == "ok"}


def test_kill_9_mid_run_then_resume(tmp_path: Path) -> None:
    n, conc = 240, 12
    with run_server_process(latency=0.25, tokens_per_reply=400) as srv:
        work = tmp_path / "w"
        write_prompts(work, [{"text": f"Kill test question {i}: what about the {i}th apple?"} for i in range(n)])
        recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url, limits={"concurrency": conc})]})
        proc = subprocess.Popen(
            [sys.executable, "-m", "builder.cli", "generate", str(recipe), "--work", str(work)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        store = work / "generate" / "store" / "r1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until a good part of the run is stored
            lines = sum(f.read_bytes().count(b"\n") for f in store.glob("*.idx")) if store.is_dir() else 0
            if lines >= n // 3:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.5)  # let the server see the dropped connections
        before = _stored_ok(work)
        sent_before = srv.stats()["by_prompt"]
        assert n // 3 <= len(before) < n, "the kill must land mid-run"
        assert not (work / "generate" / "replies").exists()  # killed before any export

        run_generate(load_recipe(recipe), WorkDir(work))
        after = srv.stats()["by_prompt"]

    rows = [r for f in sorted((work / "generate" / "replies").glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(rows) == n and all(r["status"] == "ok" for r in rows)  # 0 lost
    hashes = _hashes(recipe, work)
    assert all(after[hashes[g]] == 1 for g in before)  # stored replies were never requested again
    resent = [g for g, h in hashes.items() if after.get(h, 0) > 1]
    in_flight_at_kill = [g for g, h in hashes.items() if g not in before and sent_before.get(h, 0) > 0]
    assert set(resent) <= set(in_flight_at_kill) and len(resent) <= conc
    ledger = pq.read_table(work / "generate" / "ledger.parquet").to_pylist()
    assert len(ledger) == n and all(r["status"] == "kept" for r in ledger)


def _first_run(tmp_path: Path, base_url: str, texts: list[str]) -> tuple[Path, Path]:
    """A work dir whose store holds one finished run of `texts`; (work, recipe path)."""
    work = tmp_path / "w"
    write_prompts(work, [{"text": t} for t in texts])
    recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(base_url)]})
    run_generate(load_recipe(recipe), WorkDir(work))
    return work, recipe


def test_torn_record_after_crash_is_requested_again(tmp_path: Path) -> None:
    with run_server(tokens_per_reply=80) as srv:
        work, recipe = _first_run(tmp_path, srv.base_url, [f"torn {i}" for i in range(10)])
        store = work / "generate" / "store" / "r1"
        (data,) = store.glob("*.jsonl")
        (idx,) = store.glob("*.idx")
        # A crash mid-write: the last data line is cut short, and a half index line follows.
        data.write_bytes(data.read_bytes()[:-40])
        idx.write_bytes(idx.read_bytes() + b'{"g": "abc", "s"')
        assert len(_stored_ok(work)) == 9
        run_generate(load_recipe(recipe), WorkDir(work))
        assert srv.stats()["requests_total"] == 11  # only the torn one went again
        assert len(_stored_ok(work)) == 10
        rows = [r for f in (work / "generate" / "replies").glob("part-*.parquet") for r in pq.read_table(f).to_pylist()]
        assert len(rows) == 10 and all(r["status"] == "ok" for r in rows)
        # A third run sends nothing at all.
        run_generate(load_recipe(recipe), WorkDir(work))
        assert srv.stats()["requests_total"] == 11


def test_datatrove_tasks_share_the_prompts(tmp_path: Path) -> None:
    """Two local datatrove tasks: each sends its share into its own segment, nothing twice."""
    with run_server(tokens_per_reply=60, latency=0.05) as srv:
        work = tmp_path / "w"
        write_prompts(work, [{"text": f"task share {i}"} for i in range(30)])
        recipe = write_recipe(tmp_path, {"teachers": [openai_teacher(srv.base_url)], "tasks": 2},
                              executor={"kind": "local", "tasks": 2, "workers": 2})  # fmt: skip
        run_generate(load_recipe(recipe), WorkDir(work))
        st = srv.stats()
    segs = sorted(p.name.split("-")[0] for p in (work / "generate" / "store" / "r1").glob("*.jsonl"))
    assert segs == ["t00000", "t00001"]
    assert st["requests_total"] == 30 and st["duplicate_prompts"] == 0
    rows = [r for f in (work / "generate" / "replies").glob("part-*.parquet") for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 30 and all(r["status"] == "ok" for r in rows)


def test_a_record_whose_bytes_are_damaged_is_a_failed_row_then_asked_again(tmp_path: Path) -> None:
    # A power loss on a filesystem that leaves zeros (or disk damage): the index line is intact
    # but the record it points at is no JSON. The export must not crash (on every later run too);
    # the reply is a failed row saying why, and the next run asks it again.
    with run_server(tokens_per_reply=80) as srv:
        work, recipe = _first_run(tmp_path, srv.base_url, [f"zeros {i}" for i in range(5)])
        (data,) = (work / "generate" / "store" / "r1").glob("*.jsonl")
        body = data.read_bytes()
        data.write_bytes(body[:-300] + b"\0" * 300)
        run_generate(load_recipe(recipe), WorkDir(work))
        rows = [r for f in (work / "generate" / "replies").glob("part-*.parquet") for r in pq.read_table(f).to_pylist()]
        bad = [r for r in rows if r["status"] != "ok"]
        assert len(rows) == 5 and len(bad) == 1 and bad[0]["error_code"] == "store_damaged", bad
        assert data.name in bad[0]["error_message"]
        run_generate(load_recipe(recipe), WorkDir(work))
        rows = [r for f in (work / "generate" / "replies").glob("part-*.parquet") for r in pq.read_table(f).to_pylist()]
        assert all(r["status"] == "ok" for r in rows) and srv.stats()["requests_total"] == 6
