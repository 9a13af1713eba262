"""Where the real corpus is: `$ANSWER_DISTILL_CORPUS`, else `shared/corpus` beside the clone.

One answer for every test and benchmark (a user's clone has neither: tests skip with a reason,
benchmarks say what is missing).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path:
    return Path(os.environ.get("ANSWER_DISTILL_CORPUS") or REPO.parent / "shared" / "corpus")
