"""The Great Expectations process (quality/gx_process.py): validations answered in order with
GX's own verdicts, a failed request raised in the parent naming it (the child keeps serving),
a dead child reported rather than waited on forever, and the release process itself never
importing GX (the point of the child: its import and validations stay off the release's GIL)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from quality.gx_process import GxProcess, Suites

ROOT = Path(__file__).resolve().parents[1]
SUITES = Suites((("answer", False, False),), max_tokens=100, language_mostly=0.9, mix_tolerance=0.1,
                schema_version="2.0")


def _mix(deviations: list[float]) -> pd.DataFrame:
    n = len(deviations)
    return pd.DataFrame({"key": [f"k{i}" for i in range(n)], "share": [0.5] * n, "target": [0.5] * n,
                         "deviation": deviations})


def test_gx_process_validates_reports_errors_and_a_dead_child(tmp_path: Path) -> None:
    gx = GxProcess()
    try:
        assert gx.call("setup", SUITES) is None
        paths = (str(tmp_path / "mix.json"), str(tmp_path / "mix.html"))
        outcomes, success = gx.call("run", "category_mix", _mix([0.0, 0.4, 0.05]), "answer", *paths)
        assert success is False
        (o,) = outcomes.values()
        assert (o.check, o.variant, o.column, o.element_count, o.unexpected_count) == \
            ("category_mix", "answer", "deviation", 3, 1)
        assert Path(paths[0]).stat().st_size and "<html" in Path(paths[1]).read_text().lower()
        with pytest.raises(RuntimeError, match="no_such_suite"):
            gx.call("run", "no_such_suite", _mix([0.0]), "answer", *paths)
        outcomes, success = gx.call("run", "category_mix", _mix([0.0, 0.1]), "answer", *paths)  # still serving
        assert success is True and next(iter(outcomes.values())).unexpected_count == 0
        gx._proc.kill()
        with pytest.raises(RuntimeError, match="exited"):
            gx.call("run", "category_mix", _mix([0.0]), "answer", *paths)
    finally:
        gx.close()


def test_release_process_never_imports_gx(tmp_path: Path) -> None:
    """A release run in a fresh interpreter leaves `great_expectations` out of its own modules,
    and still writes GX's pages (from the child)."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from builder.recipe import load_recipe
        from builder.release.stage import run_release
        from tests.test_release_helpers import build_work, write_recipe
        base = Path({str(tmp_path)!r})
        work = build_work(base / "work", n_en=8, n_zh=2, shard_rows=5)
        run_release(load_recipe(write_recipe(base / "recipe.yaml")), work, base / "out")
        assert (base / "out" / "quality" / "data_docs" / "index.html").is_file()
        print("gx" if "great_expectations" in sys.modules else "no-gx")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "no-gx"


def test_signal_file_gives_the_child_the_frame_the_tables_make(tmp_path: Path) -> None:
    """Signals written shard by shard (each batch its own dictionaries; a batch of another
    schema starts a new file) read back, memory-mapped, into the same frame as the tables."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from quality.derive import to_frame
    from quality.gx_process import SignalFile, read_signals

    def batch(ids: list[str], cats: list[str], chars: pa.Array) -> pa.Table:
        return pa.table({"prompt_id": ids, "category": pc.dictionary_encode(pa.array(cats)), "assistant_chars": chars})

    tables = [batch(["a", "b"], ["math", "chat"], pa.array([3, 4], pa.int32())),
              batch(["c"], ["code"], pa.array([5], pa.int32())),
              batch(["d", "e"], ["chat", "chat"], pa.array([None, 7], pa.int64()))]  # another schema
    sink = SignalFile(tmp_path / "signals", "answer")
    assert not sink
    sink.write(tables[:1])
    sink.write(tables[1:])
    paths = sink.close()
    assert sink.rows == 5 and len(paths) == 2
    got, want = to_frame(read_signals(paths)), to_frame(tables)
    pd.testing.assert_frame_equal(got, want)
    assert list(got["category"].cat.categories) == list(want["category"].cat.categories)
