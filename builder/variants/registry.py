"""The variants: one registered spec each. Adding a variant is one registry entry.

A variant is a small function, registered with `@variant(name, reply=…, blurb=…)`: it gets a
`Candidate` (the prompt and its selected replies) and returns the assistant turn's text, or a
`Skip` saying why this prompt is absent from the variant. The spec next to it says what the
rest of the pipeline needs to know, so nothing downstream names a variant:

    reply          the teacher reply the row is built from and carries as provenance
                   ("reasoning" | "control"; None: the community response)
    needs_summary  the stage computes S_think for it; quality checks it ends with the answer
    think          its turn opens with one <think>…</think> block (otherwise: no tags at all)
    exact_answer   its turn is the reasoning answer byte for byte: the reference the
                   summary check compares against (the release reads it first)
    blurb          the dataset card's one-line description of the assistant turn
    default        built when the recipe leaves `variants.build` unset
    preference     its rows are preference pairs (builder/variants/pairs.py, table `pairs`), built
                   from all of a prompt's samples, not one assistant turn: `fn` is not called; the
                   release publishes them as the `pairs` config with its own schema (release/pairs.py)

The release and `quality/` may not import this stage: the variants stage writes each built
variant's spec as data (`VariantSpec.info()`, builder.tables.VariantInfo) into its summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from builder.reasoning_format import ANSWER_MARKERS, THINK_MARKERS

if TYPE_CHECKING:  # tables pulls in `datasets` (~1 s): not on the CLI's recipe-check path
    from builder.recipe import Recipe
    from builder.tables import VariantInfo


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


@dataclass(slots=True)
class Candidate:
    prompt: dict[str, Any]  # a PROMPT_FEATURES row
    # Named after the spec's `reply` values: the stage picks a row's reply by that name.
    reasoning: dict[str, Any] | None  # the selected kept PARSED row of the reasoning teacher
    control: dict[str, Any] | None  # the selected kept PARSED row of the control teacher
    summary: str | None = None  # S_think, when the summarizer produced one that passed checks
    summary_failure: str | None = None
    # (fragment rate, filler rate, repetition, final result covered, faithfulness) of `summary`
    summary_scores: tuple[float, float, float, bool | None, float] | None = None
    overthinking_z: float | None = None  # the reasoning reply's thinking length z-score
    # The prompt's instruction constraints (builder.constraints.spec.Constraint, from constraints_json).
    constraints: list[Any] = field(default_factory=list)
    extra_codes: list[str] = field(default_factory=list)  # codes this stage adds (summary declined, contradictions)
    choice: tuple[str, str] | None = None  # adaptive: (variant_choice, choice_reason), set by the stage
    answer_tokens: int | None = None  # the reasoning answer's student tokens, counted once for every variant


VariantFn = Callable[[Candidate], "str | Skip"]
Reply = Literal["reasoning", "control"]


@dataclass(frozen=True, slots=True)
class VariantSpec:
    name: str
    fn: VariantFn
    reply: Reply | None
    blurb: str
    needs_summary: bool = False
    think: bool = False
    exact_answer: bool = False
    default: bool = True
    preference: bool = False

    def info(self) -> VariantInfo:
        from builder.tables import VariantInfo

        return VariantInfo(name=self.name, reply=self.reply, needs_summary=self.needs_summary, think=self.think,
                           exact_answer=self.exact_answer, blurb=self.blurb)


REGISTRY: dict[str, VariantSpec] = {}


def variant(name: str, *, reply: Reply | None, blurb: str, needs_summary: bool = False, think: bool = False,
            exact_answer: bool = False, default: bool = True, preference: bool = False
            ) -> Callable[[VariantFn], VariantFn]:  # fmt: skip
    def register(fn: VariantFn) -> VariantFn:
        if name in REGISTRY:  # a second spec would silently replace the first
            raise ValueError(f"variant {name!r} is already registered")
        REGISTRY[name] = VariantSpec(name, fn, reply, blurb, needs_summary, think, exact_answer, default, preference)
        return fn

    return register


def unregister(name: str) -> None:
    """Remove a registered variant (tests register their own and clean up after)."""
    REGISTRY.pop(name, None)


def to_build(build: Iterable[str] | None) -> list[str]:
    """The recipe's `variants.build`, or every default variant when it is unset."""
    return list(build) if build is not None else [n for n, s in REGISTRY.items() if s.default]


def unknown_names(recipe: Recipe) -> list[str]:
    """"<key>: unknown variant(s) [...]" for every recipe knob naming a variant the registry lacks:
    a typo is caught when the recipe is loaded (`check`), not by the stage that reads the knob."""
    named = {
        "variants.build": to_build(recipe.variants.build),
        "variants.format_gate.variants": recipe.variants.format_gate.variants or [],
        "quality.mix.variants": recipe.quality.mix.variants,
        "quality.verification_variants": recipe.quality.verification_variants or [],
    }
    return [f"{key}: unknown variant(s) {bad}" for key, names in named.items()
            if (bad := [v for v in names if v not in REGISTRY])]  # fmt: skip


def declare(names: Iterable[str]) -> list[VariantInfo]:
    """The chat specs of `names` as data, in registry order (the order the release publishes in);
    preference variants are left out (their own schema; see `omitted`)."""
    wanted = set(names)
    return [s.info() for n, s in REGISTRY.items() if n in wanted and not s.preference]


def omitted(names: Iterable[str]) -> dict[str, str]:
    """Built variants the release does not publish, with the reason the variants summary records.
    The release publishes the `pairs` table as its own config (builder/release/pairs.py)."""
    return {
        n: "preference rows have their own schema and only the `pairs` table is published"
        for n in names if n in REGISTRY and REGISTRY[n].preference and n != "pairs"
    }  # fmt: skip


@variant("original", reply=None,
         blurb="the community dataset's own response (R_orig; the paper's baseline)")
def original(c: Candidate) -> str | Skip:
    resp = c.prompt.get("original_response")
    if not resp:
        # A reply that only calls tools has no text: its calls are the turn (the stage adds them).
        return "" if c.prompt.get("original_tool_calls") else Skip("no_original_response")
    # A community reply that carries reasoning tags (any preset's: R1's <think>, Marco-o1's
    # <Thought>, Sky-T1's <|begin_of_thought|>) or answer tags would teach the non-reasoning
    # student to think aloud or to write tags: it is left out of `original` (the card counts
    # it) rather than edited.
    if any(m in resp for m in THINK_MARKERS):
        return Skip("think_tag_in_original")
    if any(m in resp for m in ANSWER_MARKERS):
        return Skip("answer_tag_in_original")
    return resp


@variant("answer", reply="reasoning", exact_answer=True,
         blurb="the teacher's final answer only, thinking removed (A_reason; the paper's best)")
def answer(c: Candidate) -> str | Skip:
    if c.reasoning is None:
        return Skip("no_kept_reply")
    return c.reasoning["answer"] or Skip("empty_answer")  # A_reason, byte-exact


@variant("think_summary", reply="reasoning", needs_summary=True,
         blurb="a short summary of the teacher's thinking, then the exact answer (S_think ⊕ A_reason)")
def think_summary(c: Candidate) -> str | Skip:
    if c.reasoning is None:
        return Skip("no_kept_reply")
    if c.summary is None:
        return Skip(c.summary_failure or "no_summary")
    if not c.reasoning["answer"]:
        return Skip("empty_answer")
    # S_think ⊕ A_reason: the answer is appended byte-identical.
    return f"{c.summary}\n\n{c.reasoning['answer']}"


@variant("full", reply="reasoning", think=True,
         blurb="the teacher's thinking in `<think>…</think>`, then the answer (reasoning-style SFT)")
def full(c: Candidate) -> str | Skip:
    if c.reasoning is None:
        return Skip("no_kept_reply")
    if not c.reasoning["think"] or not c.reasoning["answer"]:
        return Skip("empty_think" if not c.reasoning["think"] else "empty_answer")
    return f"<think>\n{c.reasoning['think']}\n</think>\n\n{c.reasoning['answer']}"


@variant("control", reply="control", blurb="a non-reasoning teacher's reply (the control)")
def control(c: Candidate) -> str | Skip:
    if c.control is None:
        return Skip("no_control_reply")
    return c.control["answer"] or Skip("empty_answer")


@variant("pairs", reply="reasoning", default=False, preference=True,
         blurb="preference pairs from n samples per prompt: a verified (or best) answer against a failed, "
               "truncated, repetitive or inconsistent one (TRL's conversational DPO format)")  # fmt: skip
def pairs(c: Candidate) -> str | Skip:
    return Skip("built_from_all_samples")  # never called: builder/variants/pairs.py builds the rows


@variant("adaptive", reply="reasoning", needs_summary=True, default=False,
         blurb="per row, the answer only or a summary + the exact answer, chosen by the recipe's policy "
               "(`variant_choice`, `choice_reason`)")
def adaptive(c: Candidate) -> str | Skip:
    if c.reasoning is None:
        return Skip("no_kept_reply")
    if not c.reasoning["answer"]:
        return Skip("empty_answer")
    if c.choice is not None and c.choice[0] == "summary" and c.summary:
        return f"{c.summary}\n\n{c.reasoning['answer']}"
    return c.reasoning["answer"]
