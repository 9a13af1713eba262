"""`joins_additively` (builder/chat_length.py): where it says yes, count(head + text) == count(head) + count(text) in
the `tokenizers` library itself (the truth the stage's counts must equal), on real corpus texts,
the seam strings of test_tokens.py and fuzz; and the rule's guard is needed (a text that opens
with whitespace does merge with the head's line break)."""

from __future__ import annotations

import pytest

from builder import tokens
from builder.chat_length import ADDITIVE_PROVEN, joins_additively
from tests.test_tokens import EDGES, _fuzz, corpus_sample, needs_corpus


def _heads(texts: list[str]) -> list[str]:
    # The variants' heads: a thinking block, a summary, and ones ending in odd characters before the break.
    # (Only the seam matters: a head's first characters end their pre-tokens long before it.)
    out = ["", "\n", "\n\n", " \n", "x\n", "中\n\n", "e\u0301\n\n", "<|im_end|>\n", "1\n\n", "!!!\n\n", "\t\n"]
    out += [f"<think>\n{t[-300:]}\n</think>\n\n" for t in texts[:40:4]]
    out += [f"{t[:200]}\n\n" for t in texts[1:60:6]]
    return out


@needs_corpus
@pytest.mark.parametrize("name", sorted(ADDITIVE_PROVEN))
def test_additive_where_the_rule_says_so(name: str) -> None:
    texts = corpus_sample(stride=80)
    tails = [t[:200] for t in texts[::5]] + EDGES + _fuzz(80, seed=7) + ["\u0301x", "'s", "<think>", "٣", "\x00"]
    heads = _heads(texts)
    tok = tokens.load_tokenizer(name)

    def hf(batch: list[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch_fast(batch, add_special_tokens=False)]

    pairs = [(h, t) for h in heads for t in tails]
    yes = [(h, t) for h, t in pairs if joins_additively(name, h, t)]
    assert len(yes) > 3_000 and len(yes) < len(pairs)
    whole = hf([h + t for h, t in yes])
    head_n = dict(zip(heads, hf(heads)))
    tail_n = dict(zip(tails, hf(tails)))
    bad = [(h[-20:], t[:20]) for (h, t), n in zip(yes, whole) if n != head_n[h] + tail_n[t]]
    assert not bad, f"{name}: not additive on {len(bad)} of {len(yes)} pairs, e.g. {bad[:3]}"
    # the stage counts with tiktoken: the same sums
    assert tokens.count_tokens(name, [h + t for h, t in yes[:500]]) == whole[:500]


@pytest.mark.parametrize("name", sorted(ADDITIVE_PROVEN))
def test_the_rule_refuses_what_merges(name: str) -> None:
    # a text opening with whitespace joins the head's line breaks into one token: not additive
    head, text = "The answer.\n\n", "\nB"
    assert not joins_additively(name, head, text)
    n = tokens.count_tokens(name, [head, text, head + text])
    assert n[2] != n[0] + n[1]
    assert not joins_additively(name, "no break", "x") and joins_additively(name, "", " x")
    assert not joins_additively("not-proven", "a\n", "x")
