"""benchmarks/cpu_floor.py counts exactly the texts whose counts the stages publish: each text it
counts, counted alone, equals the count the sample build's tables hold for it."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from builder.tokens import count_tokens

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from cpu_floor import count_texts, floor_figures  # noqa: E402


def test_floor_texts_are_the_published_counts(sample_build) -> None:
    work = sample_build.release.parent
    texts, prompts = count_texts(work, "deepseek-r1", "qwen2.5")
    checked = [t for t in texts if t.published is not None]
    assert prompts and len(checked) == len(texts)
    kinds = Counter(t.tokenizer for t in texts)
    assert kinds["deepseek-r1"] > 0 and kinds["qwen2.5"] > kinds["deepseek-r1"] // 2
    wrong = [(t.tokenizer, t.text[:60], t.published, n) for t in checked
             for n in count_tokens(t.tokenizer, [t.text]) if n != t.published]  # fmt: skip
    assert not wrong, wrong[:5]


def test_floor_figures_add_up(sample_build) -> None:
    out = floor_figures(sample_build.release.parent, stages_cpu_s=100.0)
    assert out["floor_summaries"] > 0 and out["floor_tokens_counted"] > 0
    assert abs(out["floor_cpu_s"] - out["floor_count_cpu_s"] - out["floor_summary_cpu_s"]) <= 0.011  # rounding
    assert out["replies_per_cpu_s_ceiling"] > 0 and 0 < out["floor_share"] < 1
