"""Kill -9 a stage at a random moment and re-run it: the previous state or a whole new one
right after the kill, then the outputs of an uninterrupted run, nothing lost, ledger balanced.

Two random kills each of `curate` and `variants` (real subprocesses, SIGKILL to the whole
process group), with the checks of benchmarks/killtest.py, which runs every stage 20 times and
generate against an openai teacher. The reference is the session's sample build (conftest).
Set KILLTEST_SEED to replay a failure's kill moments.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import killtest as kt  # noqa: E402

STAGES = ("curate", "generate", "responses", "variants")


@pytest.mark.slow
def test_kill_9_then_rerun_curate_and_variants(sample_release: Path, tmp_path: Path) -> None:
    seed = int(os.environ.get("KILLTEST_SEED") or time.time_ns() % 1_000_000)
    ref = kt.reference_from(sample_release.parent, kt.SAMPLE, STAGES)
    for stage in ("curate", "variants"):
        rng = random.Random(f"{seed}:{stage}")
        for k in range(2):
            delay = kt.draw_delay(rng, ref, stage)
            r = kt.kill_trial(ref, stage, delay, tmp_path / f"{stage}-{k}")
            where = f"KILLTEST_SEED={seed}: {stage} killed at {delay:.2f}s ({r['after_kill']}): {r}"
            assert r["invariant"] == [], where
            assert r["rerun_rc"] == 0 and r["problems"] == [], where
            assert r["identical"] and r["rows_lost"] == 0 and r["ledger_ok"], where
            assert r["leftovers"] == [], where
