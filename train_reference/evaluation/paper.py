"""Table 1 of arXiv 2504.09639 (SFT of Qwen2.5-32B): the rows our scores are shown beside."""

from __future__ import annotations

# Column order and headers as in the paper's Table 1.
COLUMNS: list[tuple[str, str]] = [
    ("gpqa_diamond", "GPQA-Diamond pass@1"),
    ("gsm8k", "GSM8K"),
    ("mmlu", "MMLU"),
    ("humaneval", "HumanEval"),
    ("ifeval", "IFEval (prompt strict)"),
    ("alignbench", "AlignBench"),
    ("mt_bench", "MT-Bench"),
]

# Accuracy-style columns are percentages; the judge columns are 1-10 ratings.
PERCENT = {"gpqa_diamond", "gsm8k", "mmlu", "humaneval", "ifeval"}

_ORDER = [c for c, _ in COLUMNS]


def _row(*vals: float | None) -> dict[str, float | None]:
    return dict(zip(_ORDER, vals, strict=True))


# None = "-" in the paper (not reported).
PAPER_ROWS: dict[str, dict[str, float | None]] = {
    "OLMo-2-32B-0325-SFT": _row(None, 78.4, 76.1, None, 72.4, None, None),
    "AM-32B-DeepSeek-V3-Answer-SFT": _row(47.9, 90.2, 70.1, 90.9, 76.6, 7.6, 8.2),
    "AM-32B-R1-Answer-SFT": _row(40.3, 92.2, 82.5, 90.9, 76.9, 6.9, 7.6),
    "AM-32B-Think-Summarization-SFT": _row(47.7, 91.4, 81.0, 86.0, 61.2, 7.2, 7.9),
    "AM-32B-Raw-Answer-SFT (baseline)": _row(34.3, 83.7, 82.5, 80.5, 73.4, 6.2, 7.7),
}
