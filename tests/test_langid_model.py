"""py3langid's model from the unpacked copy (builder/langid_model.py): the same verdicts as the
package's own loader, and a damaged copy unpacked again instead of used."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import langid_model

TEXTS = ["Hello there, this is plainly an English sentence.", "Bonjour, je suis un texte écrit en français.",
         "Привет, как у тебя дела сегодня?", "Hola, ¿cómo estás? Espero que bien.", "नमस्ते दुनिया, आप कैसे हैं?",
         "Dies ist ein kurzer deutscher Satz über das Wetter.", "x = 1 + 2", ""]  # fmt: skip


def _package() -> object:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def test_verdicts_equal_the_package_loader(tmp_path: Path) -> None:
    ref = _package()
    for _ in range(2):  # unpacked and written, then read back
        ours = langid_model.identifier(tmp_path, norm_probs=True)
        assert [ours.classify(t) for t in TEXTS] == [ref.classify(t) for t in TEXTS]  # type: ignore[attr-defined]
    assert len(list(tmp_path.glob("*.npz"))) == 1
    ours.set_languages(["en", "fr", "de"])
    ref.set_languages(["en", "fr", "de"])  # type: ignore[attr-defined]
    assert [ours.classify(t) for t in TEXTS] == [ref.classify(t) for t in TEXTS]  # type: ignore[attr-defined]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_copy_is_unpacked_again(tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    langid_model.arrays(tmp_path)
    (copy,) = tmp_path.glob("*.npz")
    blob = bytearray(copy.read_bytes())
    if damage == "flip":
        blob[len(blob) // 3] ^= 0x10
    else:
        del blob[len(blob) // 2 :]
    copy.write_bytes(bytes(blob))
    unpacked = []
    real = langid_model._unpack
    monkeypatch.setattr(langid_model, "_unpack", lambda p: unpacked.append(p) or real(p))
    got = langid_model.arrays(tmp_path)
    assert unpacked and got["nextmove"].shape == real(langid_model._packed())["nextmove"].shape
    (again,) = tmp_path.glob("*.npz")  # the damaged copy replaced
    assert again.read_bytes() != bytes(blob)
    unpacked.clear()
    langid_model.arrays(tmp_path)
    assert not unpacked  # and used from then on
