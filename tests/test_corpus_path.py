"""One answer to "where is the real corpus" (tests/corpus.py) for every test and benchmark."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.corpus import REPO, corpus_dir


def test_the_environment_names_the_corpus_else_the_folder_beside_the_clone(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("ANSWER_DISTILL_CORPUS", str(tmp_path))
    assert corpus_dir() == tmp_path
    monkeypatch.delenv("ANSWER_DISTILL_CORPUS")
    assert corpus_dir() == REPO.parent / "shared" / "corpus"


def test_no_other_module_spells_the_corpus_path() -> None:
    spelled = re.compile(r"""["']shared["']\s*/\s*["']corpus["']|ANSWER_DISTILL_CORPUS""")
    own = Path(__file__).resolve()
    hits = [str(p.relative_to(REPO)) for d in ("benchmarks", "tests", "builder", "quality", "train_reference", "scripts")
            for p in (REPO / d).rglob("*.py") if p.resolve() not in (own, REPO / "tests" / "corpus.py")
            and spelled.search(p.read_text(encoding="utf-8"))]  # fmt: skip
    assert hits == [], f"use tests.corpus.corpus_dir() in {hits}"
