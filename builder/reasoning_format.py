"""Reasoning delimiters: the strings that mark thinking and the final answer, and their presets.

Shared vocabulary of the generate stage (imports name a `reasoning_format`) and the responses
stage (which splits replies with it), so it lives in the core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The four strings that mark thinking and the final answer in one reply style."""

    think_open: str
    think_close: str
    answer_open: str
    answer_close: str

    def __post_init__(self) -> None:
        parts = (self.think_open, self.think_close, self.answer_open, self.answer_close)
        if not all(isinstance(p, str) and p.strip() for p in parts):
            raise ValueError(f"delimiters must be four non-blank strings, got {parts!r}")
        if len(set(parts)) != 4:
            raise ValueError(f"delimiters must be four distinct strings, got {parts!r}")

    def all(self) -> tuple[str, str, str, str]:
        return (self.think_open, self.think_close, self.answer_open, self.answer_close)


R1 = Delimiters("<think>", "</think>", "<answer>", "</answer>")
SKYTHOUGHT = Delimiters("<|begin_of_thought|>", "<|end_of_thought|>", "<|begin_of_solution|>", "<|end_of_solution|>")
MARCO = Delimiters("<Thought>", "</Thought>", "<Output>", "</Output>")
PRESETS: Mapping[str, Delimiters] = MappingProxyType({"r1": R1, "skythought": SKYTHOUGHT, "marco": MARCO})
# What a published turn may not hold (outside `full`'s one <think>…</think> block): every preset's
# thinking delimiters, and the answer delimiters that are never prose (R1's tags, Sky-T1's markers;
# Marco's <Output> is ordinary XML as well, and never comes without its <Thought>).
THINK_MARKERS: tuple[str, ...] = tuple(dict.fromkeys(m for d in PRESETS.values() for m in (d.think_open, d.think_close)))
ANSWER_MARKERS: tuple[str, ...] = (R1.answer_open, R1.answer_close, SKYTHOUGHT.answer_open, SKYTHOUGHT.answer_close)

_FIELDS = ("think_open", "think_close", "answer_open", "answer_close")


def resolve_delimiters(
    spec: str | Delimiters | Mapping[str, str] | Sequence[str] | None,
) -> Delimiters:
    """A recipe's `reasoning_format`: a preset name, four strings, or a mapping of them."""
    if spec is None:
        return R1
    if isinstance(spec, Delimiters):
        return spec
    if isinstance(spec, str):
        try:
            return PRESETS[spec.strip().lower()]
        except KeyError:
            raise ValueError(
                f"unknown reasoning_format {spec!r}: use one of {sorted(PRESETS)} "
                f"or give the four strings {list(_FIELDS)}"
            ) from None
    if isinstance(spec, Mapping):
        missing = [k for k in _FIELDS if k not in spec]
        if missing:
            raise ValueError(f"reasoning_format mapping lacks {missing}; it needs {list(_FIELDS)}")
        return Delimiters(*(spec[k] for k in _FIELDS))
    if isinstance(spec, Sequence) and len(spec) == 4:
        return Delimiters(*spec)
    raise ValueError(f"reasoning_format must be a preset name or four strings, got {spec!r}")
