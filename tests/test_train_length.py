"""train_reference/sft.py and rows longer than training.max_length: TRL would cut them (the reply's
end and its stop token with them); they are left out and counted, kept on request, or refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("trl", reason="the train extra is not installed")

from train_reference import sft  # noqa: E402
from train_reference.config import DatasetSection  # noqa: E402
from train_reference.sft import SetupError  # noqa: E402


def _rows(release: Path, config: str) -> list[dict]:
    return [r for f in sorted((release / "data" / config).glob("*.parquet"))
            for r in pq.read_table(f, columns=["student_tokens", "messages"]).to_pylist()]  # fmt: skip


def _lengths(release: Path, config: str) -> list[int]:
    return [r["student_tokens"] for r in _rows(release, config)]


def test_over_length_rows_are_dropped_counted_kept_or_refused(sample_release: Path, caplog: pytest.LogCaptureFixture) -> None:
    lengths = _lengths(sample_release, "full")
    limit = sorted(lengths)[len(lengths) // 2]  # about half the rows are longer
    over = sum(n > limit for n in lengths)
    assert 0 < over < len(lengths)
    path = str(sample_release)
    with caplog.at_level(logging.WARNING, logger="train_reference.sft"):
        kept = sft.load_release(DatasetSection(path=path, config="full"), path, None, limit)
    assert len(kept) == len(lengths) - over
    assert f"{over:,} of {len(lengths):,} rows" in caplog.text and "left out" in caplog.text
    # The kept rows are the short ones: their replies are those of the rows within the limit.
    short = sorted(r["messages"][-1]["content"] for r in _rows(sample_release, "full") if r["student_tokens"] <= limit)
    assert sorted(r["completion"][0]["content"] for r in kept) == short
    whole = sft.load_release(DatasetSection(path=path, config="full", over_length="truncate"), path, None, limit)
    assert len(whole) == len(lengths)
    with pytest.raises(SetupError, match=rf"^{over:,} of {len(lengths):,} rows .* longer than training.max_length {limit} .*"
                                          "set dataset.over_length: drop$"):  # fmt: skip
        sft.load_release(DatasetSection(path=path, config="full", over_length="error"), path, None, limit)
    assert len(sft.load_release(DatasetSection(path=path, config="full"), path, None, max(lengths))) == len(lengths)


def test_max_rows_counts_rows_that_fit(sample_release: Path) -> None:
    lengths = _lengths(sample_release, "answer")
    limit = sorted(lengths)[len(lengths) // 2]
    fit = sum(n <= limit for n in lengths)
    path = str(sample_release)
    got = sft.load_release(DatasetSection(path=path, config="answer", max_rows=fit + 50), path, None, limit)
    assert len(got) == fit
