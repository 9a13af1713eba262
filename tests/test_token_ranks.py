"""The tiktoken inputs' disk cache (builder/token_ranks.py): read back equal, rebuilt when damaged,
never in the way when it cannot be written, and counts through it equal to `tokenizers`."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import token_ranks, tokens

INPUTS = token_ranks.Inputs(
    {b"a": 0, b"b": 1, b"ab": 2, "é".encode(): 3, b"\x00\xff": 7},
    {"<|end|>": 8},
    {"pre_tokenizer": {"type": "Sequence", "pretokenizers": []}, "normalizer": {"type": "NFC"}},
)


def _never() -> token_ranks.Inputs:
    raise AssertionError("built again")


def test_read_back_equal_without_building(tmp_path: Path) -> None:
    assert token_ranks.cached(tmp_path, "k", lambda: INPUTS) == INPUTS
    assert token_ranks.cached(tmp_path, "k", _never) == INPUTS
    assert [p.name for p in tmp_path.iterdir()] == ["k.ranks"]  # no temporary file left


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_a_damaged_file_is_built_again_and_replaced(tmp_path: Path, damage: str) -> None:
    token_ranks.cached(tmp_path, "k", lambda: INPUTS)
    path = tmp_path / "k.ranks"
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 1
    elif damage == "truncate":
        del blob[-40:]
    elif damage == "empty":
        blob.clear()
    else:
        blob[:] = b"x" * 64
    path.write_bytes(bytes(blob))
    built = []
    assert token_ranks.cached(tmp_path, "k", lambda: built.append(1) or INPUTS) == INPUTS
    assert built == [1]
    assert token_ranks.cached(tmp_path, "k", _never) == INPUTS  # written whole again


def test_a_cache_path_that_is_a_file_only_costs_the_build(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("not a folder")
    assert token_ranks.cached(tmp_path / "f", "k", lambda: INPUTS) == INPUTS


TEXTS = ["Hello  world\n\n  123456 ü e\u0301 漢字かな \t\r\n", "<think>\nx\n</think>\n\n<｜end▁of▁sentence｜>", "", "   "]


@pytest.mark.parametrize("name", sorted(tokens.TIKTOKEN_PROVEN))
def test_counts_through_the_cache_equal_tokenizers(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWER_DISTILL_CACHE", str(tmp_path))
    want = tokens.count_tokens_hf(name, TEXTS)
    for _ in range(2):  # built and written, then read back
        for built in (tokens._tiktoken_build, tokens._special_finder, tokens._ordinary_counter, tokens.tiktoken_encoding):
            built.cache_clear()
        assert tokens.count_tokens_tiktoken(name, TEXTS) == want
    assert len(list((tmp_path / "tiktoken").glob(f"{name}-*.ranks"))) == 1
    fresh = tokens._tiktoken_build(name).fast
    tokens._tiktoken_build.cache_clear()
    monkeypatch.setattr(token_ranks, "cached", lambda folder, key, build: build())
    built = tokens._tiktoken_build(name).fast
    assert fresh._mergeable_ranks == built._mergeable_ranks and fresh._special_tokens == built._special_tokens
    assert fresh._pat_str == built._pat_str
    tokens._tiktoken_build.cache_clear()
