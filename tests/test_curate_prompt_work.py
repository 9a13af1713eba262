"""curate's decontamination matching and constraint detection share one forked pool
(builder/curate/prompt_work.py): same hits and constraints, in order, as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

import builder.curate.prompt_work as pw
from builder.config.curate import DecontamConfig
from builder.constraints.detect import constraints_json_many
from builder.curate.decontam import BenchmarkIndex, save_index
from builder.curate.decontam_build import IndexBuild
from builder.curate.decontam_tokens import word_hashes
from builder.errors import UserError
from builder.executors import stop_forkservers
from builder.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[1]

GSM = ("Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
       "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
       "How much in dollars does she make every day at the farmers' market?")  # fmt: skip
ZH = "一块长方形菜地长12米，宽8米，如果每平方米收获白菜5千克，这块地一共能收获多少千克白菜？"


@pytest.fixture(scope="module")
def index() -> BenchmarkIndex:
    idx = BenchmarkIndex(DecontamConfig())
    for item_id, text in (("gsm", GSM), ("zh", ZH), ("short", "What is the capital of France?")):
        idx.add("bench", item_id, text)
    idx.finish()
    return idx


def _texts() -> list[str]:
    base = [
        f"Please solve: {GSM} Answer in all lowercase letters.",  # leak embedded, plus a constraint
        "What is the capital of France?",  # short leak
        ZH + "请用不超过50个字回答。",  # Chinese leak with a Chinese constraint
        "Write at least 300 words about ducks.",  # clean, a constraint
        "How many hours a week does he spend reading if he reads 2 hours a day?",  # clean
        "What is the capital of Spain?",  # clean look-alike
    ]
    return [f"{t} ({i})" if i % 3 else t for i in range(40) for t in base]


def test_pool_gives_the_one_process_results(index: BenchmarkIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    items = [(None, t) for t in texts]
    serial_hits, serial_found = pw.match_and_detect(index, texts, items, workers=1)
    assert serial_hits == index.match_many(texts)
    assert serial_found == constraints_json_many(items)
    monkeypatch.setattr(pw, "MATCH_CHUNK", 7)  # many small jobs of both kinds, finishing out of order
    monkeypatch.setattr(pw, "DETECT_CHUNK", 5)
    seen: list[tuple[int, int]] = []
    hits, found = pw.match_and_detect(index, texts, items, workers=2, progress=lambda s, d=None, t=None: seen.append((d, t)))
    assert hits == serial_hits and found == serial_found
    assert sum(h is not None for h in hits) >= 3 * 40 * 2 // 3  # the leaks are found (not a vacuous match)
    assert sum(j != "[]" for j in found) >= 2 * 40  # constraints are found (not a vacuous list)
    assert seen[-1] == (len(texts), len(texts))  # progress ends at every prompt matched


def test_detection_alone_without_an_index() -> None:
    items = [(None, "Write at least 300 words."), (None, "What is 2+2?")] * 5_000
    hits, found = pw.match_and_detect(None, [], items, workers=2)
    assert hits == [] and found == constraints_json_many(items[:2]) * 5_000


def test_a_pickled_index_matches_alike_in_other_processes(index: BenchmarkIndex, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Workers load the index the stage built once (decontam_build): word hashes must not depend on
    the process (Python's str hash does), or a loaded index would silently match nothing."""
    texts = _texts()
    items = [(None, t) for t in texts]
    serial_hits, serial_found = pw.match_and_detect(index, texts, items, workers=1)
    save_index(index, tmp_path / "index.pickle")
    monkeypatch.setattr(pw, "MATCH_CHUNK", 7)
    hits, found = pw.match_and_detect(tmp_path / "index.pickle", texts, items, workers=2)
    assert hits == serial_hits and found == serial_found
    assert sum(h is not None for h in hits) >= 3 * 40 * 2 // 3
    # and a process with another str-hash seed hashes words alike
    code = "from builder.curate.decontam_tokens import word_hashes; print(word_hashes(['ducks', '鸭', 'x_1']).tolist())"
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(other) == word_hashes(["ducks", "鸭", "x_1"]).tolist()


def _recipe(tmp_path: Path, bench_lines: list[str]) -> Recipe:
    (tmp_path / "bench.jsonl").write_text("".join(line + "\n" for line in bench_lines))
    (tmp_path / "src.jsonl").write_text(json.dumps({"text": GSM}) + "\n")
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({
        "name": "t", "version": "0.0.1",
        "sources": [{"name": "s", "path": "src.jsonl", "fields": {"prompt": "text"}}],
        "curate": {"decontaminate": {"benchmarks": [{"name": "b", "path": "bench.jsonl", "text_fields": ["q"]}]}},
    }))  # fmt: skip
    return load_recipe(tmp_path / "r.yaml")


def test_the_background_build_gives_the_index_built_here(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, [json.dumps({"q": GSM}), json.dumps({"q": ZH}), json.dumps({"q": "What is the capital of France?"})])
    here = IndexBuild(recipe, tmp_path / "here", background=False)
    side = IndexBuild(recipe, tmp_path / "side", background=True)
    assert side.info() == here.info() and side.info().items == 3
    assert side.in_file and side.path.is_file() and not here.in_file
    texts = _texts()
    assert side.index().match_many(texts) == here.index().match_many(texts)
    side.close()
    assert not side.path.exists() and not list((tmp_path / "side").iterdir())


def test_a_killed_build_process_falls_back_to_building_here(tmp_path: Path) -> None:
    """The side process dies (the OOM killer, kill -9): info() builds the index in the driver
    instead of failing or waiting, and the workers get it from the driver (no file)."""
    import signal

    recipe = _recipe(tmp_path, [json.dumps({"q": GSM}), json.dumps({"q": ZH})])
    build = IndexBuild(recipe, tmp_path / "side", background=True)
    assert build._pool is not None
    (pid,) = build._pool._processes  # started by submit(); killed long before its job can finish
    os.kill(pid, signal.SIGKILL)
    here = IndexBuild(recipe, tmp_path / "here", background=False)
    assert build.info() == here.info() and not build.in_file and not build.path.exists()
    texts = _texts()
    assert build.index().match_many(texts) == here.index().match_many(texts)
    build.close()

def test_a_bad_benchmark_file_fails_the_background_build_with_one_line(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, [json.dumps({"other": "no q field"})])
    build = IndexBuild(recipe, tmp_path / "side", background=True)
    with pytest.raises(UserError, match=r"benchmark field 'q' is missing; fix `text_fields`"):
        build.info()
    build.close()
    assert not build.path.exists()


def test_the_side_build_leaves_no_process_behind(tmp_path: Path) -> None:
    """A forkserver exits only once all its children have: an idle build process left alive made
    stop_forkservers (after near dedupe) wait forever. Once info() returned, none is left."""
    recipe = _recipe(tmp_path, [json.dumps({"q": GSM})])
    build = IndexBuild(recipe, tmp_path / "side", background=True)
    assert build.info().items == 1
    stopper = threading.Thread(target=stop_forkservers, daemon=True)
    stopper.start()
    stopper.join(60)
    assert not stopper.is_alive()
    build.close()
