"""CHANGELOG.md says what changed in the content: switching the summarizer between two
releases shows the think_summary prompts whose text changed, the summarizer's recipe diff
and the new summarizer, while configs whose text did not change say so (content hash equal).
Plus the pieces: key-path recipe diffs, content hashes that ignore sharding, added/removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.recipe import load_recipe
from builder.release.changelog import flatten, recipe_diff
from builder.release.content import content_sha256, diff, text_hashes
from builder.release.stage import run_release
from tests.test_release_helpers import rewrite_variant, shared_release, shared_work, write_recipe

LLM = """variants:
  summarizer:
    kind: llm
    teacher: {kind: openai, model: Qwen/Qwen2.5-7B-Instruct, endpoints: [{base_url: "http://127.0.0.1:9/v1"}]}
"""


@pytest.fixture(scope="module")
def two_releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("changelog")
    first = shared_release(base)  # v0.1.0, extractive summarizer
    work_dir = base / "work2"
    shutil.copytree(shared_work(), work_dir)
    from builder.workdir import WorkDir

    work = WorkDir(work_dir)

    def llm_summaries(rows: list[dict[str, Any]]) -> None:
        for i, r in enumerate(rows):
            if i % 2 == 0:  # half the prompts get a new summary; the answer after it is the same
                answer = r["messages"][-1]["content"].split("\n\n", 1)[-1]
                r["messages"][-1]["content"] = f"The key step is to compare the options.\n\n{answer}"
            r["summarizer"] = "llm:Qwen/Qwen2.5-7B-Instruct"

    rewrite_variant(work, "think_summary", llm_summaries)
    releases = first.parent
    path = write_recipe(base / "recipe2.yaml", version="0.2.0", extra=LLM)
    path.write_text(path.read_text().replace("  repo_id: test-org/answer-distill-sample\n", ""))  # no repo id now
    res = run_release(load_recipe(path), work, releases / "v0.2.0")
    (releases / "v0.2.0" / "warnings.txt").write_text("\n".join(res.warnings))  # for the test below; not published
    return first, releases / "v0.2.0"


def _section(log: str, title: str) -> str:
    part = log.split(f"### {title}\n", 1)[1]
    return part.split("\n### ", 1)[0].split("\n## ", 1)[0]


def test_switching_the_summarizer_shows_changed_text_and_the_recipe_diff(two_releases: tuple[Path, Path]) -> None:
    first, second = two_releases
    log = (second / "CHANGELOG.md").read_text()
    assert log.startswith("# Changelog\n\n## v0.2.0 (") and "Compared with v0.1.0." in log
    content = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
               for line in _section(log, "Content").splitlines() if line.startswith("| `")}
    # think_summary: every row still there, 40 of its 80 prompts with new text.
    assert content["`think_summary`"][:6] == ["80", "80", "+0", "0", "0", "40"]
    for config in ("`answer`", "`original`", "`full`", "`control`"):
        assert content[config][3:6] == ["0", "0", "0"], config
    old_m = json.loads((first / "manifest.json").read_text())["configs"]
    new_m = json.loads((second / "manifest.json").read_text())["configs"]
    assert new_m["answer"]["content_sha256"] == old_m["answer"]["content_sha256"]
    assert new_m["think_summary"]["content_sha256"] != old_m["think_summary"]["content_sha256"]
    assert content["`think_summary`"][6] == f"`{new_m['think_summary']['content_sha256'][:16]}`"

    recipe = _section(log, "Recipe")
    assert "**summarizer**" in recipe
    assert "- `variants.summarizer.kind`: (not set) → `llm`" in recipe
    assert "- `variants.summarizer.teacher.model`: (not set) → `Qwen/Qwen2.5-7B-Instruct`" in recipe
    assert "version" not in recipe
    assert "**other**\n\n- `release.repo_id`: `test-org/answer-distill-sample` → (not set)" in recipe
    made = _section(log, "What made the rows")
    assert "- summarizers: removed `extractive`; added `llm:Qwen/Qwen2.5-7B-Instruct`" in made
    # The previous release's own changelog follows.
    assert "## v0.1.0 (" in log and "First release." in log


def test_first_release_lists_content_hashes(two_releases: tuple[Path, Path]) -> None:
    first, _ = two_releases
    log = (first / "CHANGELOG.md").read_text()
    manifest = json.loads((first / "manifest.json").read_text())
    for config, entry in manifest["configs"].items():
        assert f"- `{config}`: {entry['num_examples']:,} rows, content sha256 `{entry['content_sha256'][:16]}`" in log


def test_content_hash_ignores_sharding_but_not_text(tmp_path: Path) -> None:
    rows = [{"prompt_id": f"p{i}", "messages": [{"role": "user", "content": f"q{i}"},
                                                 {"role": "assistant", "content": f"a{i}"}]} for i in range(10)]

    def write(folder: Path, rows: list[dict[str, Any]], per: int) -> Path:
        d = folder / "data" / "answer"
        d.mkdir(parents=True)
        for k in range(0, len(rows), per):
            pq.write_table(pa.Table.from_pylist(rows[k:k + per]), d / f"train-{k:05d}.parquet")
        return folder

    a = text_hashes(write(tmp_path / "a", rows, 3), "answer")
    b = text_hashes(write(tmp_path / "b", list(reversed(rows)), 7), "answer")
    assert content_sha256(a) == content_sha256(b)
    edited = [dict(r) for r in rows[1:]] + [{"prompt_id": "p99", "messages": rows[0]["messages"]}]
    edited[0] = {**edited[0], "messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "A1"}]}
    c = text_hashes(write(tmp_path / "c", edited, 4), "answer")
    assert content_sha256(c) != content_sha256(a)
    d = diff(a, c)
    assert (d.added, d.removed, d.changed, d.unchanged) == (1, 1, 1, 8)


def test_recipe_diff_matches_named_items_by_name() -> None:
    old = "generate:\n  teachers:\n    - {name: r1, model: a, sampling: {temperature: 0.6}}\n    - {name: v3, model: b}\n"
    new = "generate:\n  teachers:\n    - {name: v3, model: b}\n    - {name: r1, model: a, sampling: {temperature: 0.7}}\n"
    assert flatten({"a": [{"name": "x", "k": 1}]}) == {"a[x].k": 1}
    changes = recipe_diff(old, new)
    assert changes == {"sampling": ["- `generate.teachers[r1].sampling.temperature`: `0.6` → `0.7`"]}
    assert recipe_diff("curate: {balance: {seed: 0}}\nversion: 1", "curate: {balance: {seed: 1}}\nversion: 2") == {
        "balance": ["- `curate.balance.seed`: `0` → `1`"]}
    moved = recipe_diff(old, old.replace("model: b", "model: c"))
    assert moved == {"teachers": ["- `generate.teachers[v3].model`: `b` → `c`"]}


def test_text_hash_sees_message_boundaries_roles_and_slices() -> None:
    from builder.release.content import row_hashes

    def _column_hashes(col: pa.Array) -> list[bytes]:
        return row_hashes(pa.table({"messages": col})).to_pylist()

    def msgs(*turns: tuple[str, str]) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in turns]

    rows = [msgs(("user", "ab"), ("assistant", "c")), msgs(("user", "a"), ("assistant", "bc")),
            msgs(("assistant", "ab"), ("user", "c")), msgs(("user", "ab"), ("assistant", "c"))]
    col = pa.array(rows, pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))
    h = _column_hashes(col)
    assert len(set(h[:3])) == 3 and h[0] == h[3]
    assert _column_hashes(col.slice(1, 3)) == h[1:]  # an array at an offset reads the same bytes
    strings = pa.array(["x", None, "", "x"])
    s = _column_hashes(strings)
    assert s[0] == s[3] and s[1] != s[2]
    assert _column_hashes(strings.slice(2)) == s[2:]


def test_without_a_repo_id_the_card_shows_a_marked_placeholder_and_the_release_warns(
    two_releases: tuple[Path, Path]
) -> None:
    _, second = two_releases
    body = (second / "README.md").read_text()
    assert 'load_dataset("YOUR-ORG/release-fixture", "answer", revision="v0.2.0")' in body
    assert "> **Placeholder.** `YOUR-ORG/release-fixture` stands for the Hub repository" in body
    assert "test-org/answer-distill-sample" not in body
    assert json.loads((second / "manifest.json").read_text())["repo_id"] is None
    assert (second / "warnings.txt").read_text().endswith(
        "the card's load snippet and citation name YOUR-ORG/release-fixture: no repo id was given; "
        "pass `release --repo org/name` or set release.repo_id, then release a new version")
