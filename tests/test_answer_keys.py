"""quality.answer_keys: the exact answers' keys held as sorted columns answer every lookup as the
dict they replace did (last key wins on a duplicate id), ids built to fool a fixed-width compare
included: different lengths, a prefix of another id, trailing NUL bytes, non-ASCII, nulls,
ids longer than every stored one."""

from __future__ import annotations

import random

import pyarrow as pa

from quality.answer_keys import AnswerKeys, digest, fixed_width


def _part(rows: list[tuple[str | None, str]]) -> pa.Table:
    return pa.table({"prompt_id": pa.array([p for p, _ in rows], pa.string()),
                     "length": pa.array([len(t.encode()) for _, t in rows], pa.int64()),
                     "digest": pa.array([digest(t) for _, t in rows], pa.binary(16))})


TRICKY = ["a", "ab", "ab\x00", "ab\x00\x00", "abc", "b", "", "é", "e\u0301", "zz" * 20, "0" * 32, "0" * 31 + "1"]


def test_lookup_agrees_with_a_dict_last_key_wins() -> None:
    rng = random.Random(7)
    pool = TRICKY + [f"{rng.getrandbits(128):032x}" for _ in range(300)]
    ref: dict[str | None, tuple[int, bytes]] = {}
    keys = AnswerKeys()
    added = 0
    for round_ in range(3):  # adding after a lookup sorts again
        parts = []
        for _ in range(4):
            rows = [(rng.choice(pool + [None]), f"answer {rng.random()} {round_}") for _ in range(60)]
            parts.append(_part(rows))
            added += sum(p is not None for p, _ in rows)
            ref.update({p: (len(t.encode()), digest(t)) for p, t in rows})
        keys.add(parts)
        queries = pool + [None, "never", "ab\x00\x00\x00", "zz" * 21, "0" * 33]
        for q in queries:
            assert keys.get(q) == ref.get(q), repr(q)
        lengths, rows_ = keys.lookup(pa.array(queries, pa.string()))
        for q, n, r in zip(queries, lengths.tolist(), rows_.tolist()):
            if q is None:
                assert n == -1  # a null id is the null key's business (null_key), not a lookup's
                continue
            want = ref.get(q)
            assert (n, keys.digests()[r].tobytes() if n >= 0 else None) == (want or (-1, None)), repr(q)
    assert len(keys) == added  # keys held, duplicates included (a variant's ids are unique: GX checks that)


def test_fixed_width_is_a_view_for_one_length_and_pads_the_rest() -> None:
    same = pa.array([f"{i:032x}" for i in range(5)])
    ids, lens = fixed_width(same)
    assert ids.base is not None and ids.dtype.itemsize == 32 and lens.tolist() == [32] * 5
    ids, lens = fixed_width(pa.chunked_array([["ab", None], ["ab\x00"]]))
    assert ids.tolist() == [b"ab", b"", b"ab"] and lens.tolist() == [2, -1, 3]
