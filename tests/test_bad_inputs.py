"""Bad input, one class per case: a one-line error naming the file or key (exit 2), or, for a
bad row, a quarantine entry with a reason and a file:line in the ledger (exit 0); never a
traceback, never "internal error".

One case per class runs the real CLI in a child process; a child costs 3-7 s of imports, so
the other cases run the same Typer app in-process (CliRunner: exit code, stdout and stderr
apart; an exception that escapes shows as exit 1), the row-level classes share one curate
run, and the reply store is checked through `latest()`, which the stages call.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from builder.cli import app
from builder.teachers.store import StoreWriter, latest
from tests.generate_helpers import write_prompts, write_recipe

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "COLUMNS": "200", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
COMMANDS = ["curate", "generate", "responses", "variants", "release", "build"]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "builder.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, env=env or ENV, capture_output=True, text=True, timeout=120, check=False)


def run(*args: str | Path, child: bool = False, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI: in a child process, or the same app in-process."""
    if child:
        done = cli(*args, env={**ENV, **(env or {})})
        return done.returncode, done.stdout, done.stderr
    res = CliRunner(env=env).invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def no_crash(out: str) -> None:
    assert "internal error" not in out and "Traceback" not in out and "Aborted" not in out, out


def one_line_error(rc: int, stdout: str, stderr: str, *needles: str | Path) -> str:
    """Exit 2 and exactly one stderr line, holding every needle."""
    no_crash(stdout + stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1, f"exit {rc}\nstdout: {stdout}\nstderr: {stderr}"
    assert lines[0].startswith("error: "), lines[0]
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def recipe(folder: Path, sources: list[dict[str, Any]], name: str = "recipe.yaml", **extra: Any) -> Path:
    data = {
        "name": "bad-inputs",
        "version": "0.1.0",
        "sources": sources,
        "curate": {"near_dedupe": {"enabled": False}, "decontaminate": {"enabled": False}},
        **extra,
    }
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def src(name: str, path: str, **fields: str) -> dict[str, Any]:
    return {"name": name, "path": path, "fields": {"prompt": "q", **fields}}


def jsonl(*rows: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


# ---------------------------------------------------------------------------------------
# Row-level classes: one curate run over one source per class; each case reads the ledger.


@pytest.fixture(scope="module")
def rows_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[int, str, str]]:
    d = tmp_path_factory.mktemp("rows")
    opts = [f"option {i}" for i in range(30)]
    (d / "mcq.jsonl").write_bytes(jsonl({"q": "Which option is right here?", "opts": opts},
                                        {"q": "Which of four is right?", "opts": opts[:4]}))
    whole = jsonl(*({"q": f"gzip row {i}: how many apples are left?"} for i in range(2000)))
    z = gzip.compress(whole)
    (d / "cut.jsonl.gz").write_bytes(z[: len(z) // 2])  # a download that stopped half way
    (d / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + jsonl({"q": "first row after a BOM"}, {"q": "second BOM row"}))
    pq.write_table(pa.table({"q": pa.array([b"\xff\xfe not text", b"binary but UTF-8 text"], pa.binary())}),
                   d / "bin.parquet")
    (d / "surrogate.jsonl").write_bytes(b'{"q": "lone \\ud800 surrogate"}\n{"q": "pair \\ud83d\\ude00 is fine"}\n')
    (d / "surrogate.json").write_bytes(b'[{"q": "json lone \\udc00 surrogate"}, {"q": "json row that is fine"}]')
    (d / "deep.jsonl").write_bytes(b'{"q": ' + b"[" * 5000 + b"]" * 5000 + b"}\n" + jsonl({"q": "shallow row"}))
    (d / "latin1.jsonl").write_bytes('{"q": "café au lait"}\n'.encode("latin-1") + jsonl({"q": "utf-8 café row"}))
    path = recipe(d, [
        src("mcq", "mcq.jsonl", options="opts"), src("cut", "cut.jsonl.gz"), src("bom", "bom.jsonl"),
        src("bin", "bin.parquet"), src("sur", "surrogate.jsonl"), src("surj", "surrogate.json"),
        src("deep", "deep.jsonl"), src("latin1", "latin1.jsonl"),
    ])  # fmt: skip
    return d, run("curate", path, "--work", d / "w")


def _ledger(work: Path) -> list[dict[str, Any]]:
    return pq.read_table(work / "curate/ledger.parquet").to_pylist()


ROW_CASES = {
    # class: (source, {location suffix: reason} quarantined at `read`, rows kept at `read`)
    "4_mcq_too_many_options": ("mcq", {"mcq.jsonl:1": "too_many_options"}, 1),
    "5_truncated_gzip": ("cut", {"cut.jsonl.gz:": "truncated_file"}, None),
    "6_utf8_bom": ("bom", {}, 2),
    "7_binary_parquet_column": ("bin", {"bin.parquet#0": "not_text"}, 1),
    "8_lone_surrogate_jsonl": ("sur", {"surrogate.jsonl:1": "bad_json"}, 1),
    "8_lone_surrogate_json": ("surj", {"surrogate.json#0": "bad_unicode"}, 1),
    "3_deep_jsonl_row": ("deep", {"deep.jsonl:1": "bad_json"}, 1),
    "not_utf8_jsonl": ("latin1", {"latin1.jsonl:1": "bad_utf8"}, 1),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_bad_rows_are_quarantined(rows_run: tuple[Path, tuple[int, str, str]], case: str) -> None:
    d, (rc, stdout, stderr) = rows_run
    no_crash(stdout + stderr)
    assert rc == 0, stderr
    source, expect, kept = ROW_CASES[case]
    read = [r for r in _ledger(d / "w") if r["step"] == "read" and r["source"] == source]
    got = {r["location"]: (r["reason"], r["detail"]) for r in read if r["status"] == "quarantined"}
    assert len(got) == len(expect), got
    for suffix, reason in expect.items():
        (loc,) = [loc for loc in got if str(d / suffix) in loc]
        assert got[loc][0] == reason and got[loc][1], got[loc]
    if kept is not None:
        assert sum(r["status"] == "kept" for r in read) == kept
    prompts = [m[0]["content"] for m in pq.read_table(d / "w/curate/prompts").column("messages").to_pylist()]
    assert not any("\ud800" in p or "\udc00" in p for p in prompts)  # nothing silently altered
    if case == "5_truncated_gzip":
        # Every row before the cut is kept, then one entry at the line where the stream broke.
        n_kept = sum(r["status"] == "kept" for r in read)
        assert 500 < n_kept < 2000 and next(iter(got)) == f"{d / 'cut.jsonl.gz'}:{n_kept + 1}"
        # Rich wraps warnings at the console width; compare the words.
        assert f"warning: source cut: {d / 'cut.jsonl.gz'}:{n_kept + 1}: " in " ".join(stderr.split())
    if case == "6_utf8_bom":
        assert "first row after a BOM" in prompts
    if case == "7_binary_parquet_column":
        assert "binary but UTF-8 text" in prompts  # valid UTF-8 bytes are decoded
    if case == "8_lone_surrogate_jsonl":
        assert "pair 😀 is fine" in prompts


# ---------------------------------------------------------------------------------------
# Whole-input classes: one line naming the file or key, exit 2.


def _regex(d: Path) -> tuple[Path, list[str]]:
    (d / "ok.jsonl").write_bytes(jsonl({"q": "hello there"}))
    bad = {**src("s", "ok.jsonl", reference="q"), "reference_regex": "([a-"}
    return recipe(d, [bad]), ["recipe.yaml: sources[0=s].reference_regex:", "not a valid regular expression"]


def _regex_no_group(d: Path) -> tuple[Path, list[str]]:
    (d / "ok.jsonl").write_bytes(jsonl({"q": "hello there"}))
    bad = {**src("s", "ok.jsonl", reference="q"), "reference_regex": "#### .+$"}
    return recipe(d, [bad]), ["sources[0=s].reference_regex:", "no capture group"]


def _dir_glob(d: Path) -> tuple[Path, list[str]]:
    (d / "data").mkdir()
    (d / "data/a.jsonl").write_bytes(jsonl({"q": "hello there"}))
    (d / "data/sub.jsonl").mkdir()
    return recipe(d, [src("s", "data/*.jsonl")]), ["source s:", str(d / "data/sub.jsonl"), "matches a folder"]


def _dir_path(d: Path) -> tuple[Path, list[str]]:
    (d / "data").mkdir()
    return recipe(d, [src("s", "data")]), ["source s:", str(d / "data"), "is a folder"]


def _deep_json(d: Path) -> tuple[Path, list[str]]:
    (d / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    return recipe(d, [src("s", "deep.json")]), [str(d / "deep.json"), "nested too deeply"]


def _latin1_json(d: Path) -> tuple[Path, list[str]]:
    (d / "l.json").write_bytes('[{"q": "café"}]'.encode("latin-1"))
    return recipe(d, [src("s", "l.json")]), [str(d / "l.json"), "is not UTF-8"]


def _latin1_csv(d: Path) -> tuple[Path, list[str]]:
    (d / "l.csv").write_bytes("q\ncafé au lait\n".encode("latin-1"))
    return recipe(d, [src("s", "l.csv")]), [str(d / "l.csv"), "is not UTF-8"]


def _empty(d: Path) -> tuple[Path, list[str]]:
    (d / "empty.jsonl").write_bytes(b"")
    return recipe(d, [src("s", "empty.jsonl")]), ["yielded 0 rows", f"{d / 'empty.jsonl'} is empty"]


def _recipe_dir(d: Path) -> tuple[Path, list[str]]:
    (d / "recipes").mkdir()
    return d / "recipes", [str(d / "recipes"), "is a folder"]


def _slurm(d: Path) -> tuple[Path, list[str]]:
    (d / "ok.jsonl").write_bytes(jsonl({"q": "hello there"}))
    return recipe(d, [src("s", "ok.jsonl")], executor={"kind": "slurm"}), ["recipe.yaml: executor:", "partition"]


# (make the input, run the CLI in a child process)
WHOLE_CASES: dict[str, tuple[Callable[[Path], tuple[Path, list[str]]], bool]] = {
    "1_invalid_reference_regex": (_regex, True),
    "1_regex_without_group": (_regex_no_group, False),
    "2_glob_matches_a_folder": (_dir_glob, False),
    "2_path_is_a_folder": (_dir_path, False),
    "3_deeply_nested_json": (_deep_json, False),
    "not_utf8_json": (_latin1_json, False),
    "not_utf8_csv": (_latin1_csv, False),
    "empty_source_file": (_empty, False),
    "recipe_path_is_a_folder": (_recipe_dir, False),
    "slurm_without_partition": (_slurm, False),
}


@pytest.mark.parametrize("case", list(WHOLE_CASES))
def test_bad_input_is_one_line(tmp_path: Path, case: str) -> None:
    make, child = WHOLE_CASES[case]
    path, needles = make(tmp_path)
    one_line_error(*run("curate", path, "--work", tmp_path / "w", child=child), *needles)
    assert not (tmp_path / "w" / "curate" / "prompts").exists()


# ---------------------------------------------------------------------------------------
# 9. --work (and release's --out) that cannot be written: every command, one line, exit 2.


@pytest.fixture(scope="module")
def small_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("recipe")
    (d / "ok.jsonl").write_bytes(jsonl({"q": "hello there"}, {"q": "a second question"}))
    return recipe(d, [src("s", "ok.jsonl")])


def test_work_is_a_file_real_cli(tmp_path: Path, small_recipe: Path) -> None:
    (tmp_path / "afile").write_text("x")
    done = run("generate", small_recipe, "--work", tmp_path / "afile", child=True)
    one_line_error(*done, tmp_path / "afile", "is a file, not a folder")


def _ro_or_full(code: int) -> Callable[..., Any]:
    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    return mkstemp


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", ["file", "under_a_file", "read_only", "full"])
def test_unwritable_work_every_command(tmp_path: Path, small_recipe: Path, monkeypatch: pytest.MonkeyPatch,
                                       command: str, kind: str) -> None:  # fmt: skip
    (tmp_path / "afile").write_text("x")
    work = {"file": tmp_path / "afile", "under_a_file": tmp_path / "afile" / "w"}.get(kind, tmp_path / "w")
    expect = {"file": "is a file, not a folder", "under_a_file": "is a file, so",
              "read_only": "Read-only file system", "full": "No space left on device"}[kind]  # fmt: skip
    if kind in ("read_only", "full"):
        # Root ignores permission bits and a test cannot fill a disk: the write probe's
        # file creation fails as a read-only mount or a full disk makes it fail.
        import builder.cli

        code = errno.EROFS if kind == "read_only" else errno.ENOSPC
        monkeypatch.setattr(builder.cli.tempfile, "mkstemp", _ro_or_full(code))
    line = one_line_error(*run(command, small_recipe, "--work", work), expect)
    assert str(work) in line  # release names its folder inside work
    assert not (tmp_path / "w").exists()  # nothing written


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_write_error_mid_stage_is_one_line(tmp_path: Path, small_recipe: Path, monkeypatch: pytest.MonkeyPatch,
                                           code: int) -> None:  # fmt: skip
    """The disk fills (or turns read-only) after the check: pyarrow's OSError, as it raises
    it (no file name), still becomes one line naming --work."""
    import builder.workdir

    def roll(self: Any) -> None:
        raise OSError(code, f"Error writing bytes to file. Detail: [errno {code}] {os.strerror(code)}")

    monkeypatch.setattr(builder.workdir.ShardWriter, "_roll", roll)
    one_line_error(*run("curate", small_recipe, "--work", tmp_path / "w"), f"{tmp_path / 'w'}: {os.strerror(code)}")


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def tiny_mounts(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A read-only tmpfs and a full one (real errnos from the kernel), when root may mount."""
    ro, full = tmp_path / "ro", tmp_path / "full"
    if not (_mount_tmpfs(ro, "ro,size=64k") and _mount_tmpfs(full, "size=16k")):
        subprocess.run(["umount", str(ro)], capture_output=True, check=False)
        pytest.skip("needs root and tmpfs mounts; test_unwritable_work_every_command covers the same lines")
    try:
        fd = os.open(full / "fill", os.O_WRONLY | os.O_CREAT)
        try:
            while True:  # until the kernel says ENOSPC
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        yield ro, full
    finally:
        for m in (ro, full):
            subprocess.run(["umount", str(m)], capture_output=True, check=False)


def test_read_only_and_full_disk_real_mounts(tiny_mounts: tuple[Path, Path], small_recipe: Path) -> None:
    ro, full = tiny_mounts
    for command in COMMANDS:
        one_line_error(*run(command, small_recipe, "--work", ro / "w"), ro / "w", "Read-only file system")
        one_line_error(*run(command, small_recipe, "--work", full / "w"), full / "w", "No space left on device")


# ---------------------------------------------------------------------------------------
# 10. A shard in the work dir cut short: the next stage names it and the stage to re-run.


def test_truncated_shard_names_it_and_the_producer(tmp_path: Path) -> None:
    work = tmp_path / "w"
    write_prompts(work, [{"text": f"question {i}"} for i in range(20)])
    (shard,) = (work / "curate/prompts").glob("part-*.parquet")
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    # A teacher no request reaches (vLLM, never started): the shard is checked before anything is
    # sent. (An unreachable endpoint would now be reported first, by `check`.)
    path = write_recipe(tmp_path, {"teachers": [{"name": "r1", "kind": "vllm", "model": "m"}],
                                   "prices": {"m": {"input_per_1m": 0.1, "output_per_1m": 0.2}}})  # no warning line
    one_line_error(*run("generate", path, "--work", work, child=True), shard, "re-run `answer-distill curate`")
    for command in ("responses", "variants"):  # the other readers of the same table
        one_line_error(*run(command, path, "--work", work), shard, "re-run `answer-distill curate`")


# ---------------------------------------------------------------------------------------
# 11. A damaged line in the middle of the reply store's index: skipped with a warning.


def test_garbage_index_line_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "generate/store/r1"
    with StoreWriter(folder, "t00000") as w:
        for i in range(3):
            w.append({"generation_id": f"g{i}", "status": "ok", "max_tokens": 8}, run="r", source="s", category="chat")
    (idx,) = folder.glob("*.idx")
    good = idx.read_bytes().splitlines(keepends=True)
    garbage = [b"\x00\x00 not json\n", b"[1, 2]\n", b'{"g": "gX"}\n', good[0].replace(b'"o":0', b'"o":"0"')]
    idx.write_bytes(good[0] + b"".join(garbage) + b"".join(good[1:]) + b'{"g": "torn tail", "s"')
    with caplog.at_level(logging.WARNING, logger="builder.teachers.store"):
        got = latest(folder)
        latest(folder)  # the stages scan several times: one warning per line, not per scan
    assert sorted(got) == ["g0", "g1", "g2"]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == len(garbage), warned  # the torn tail (no newline) is a crash, not damage
    for lineno, msg in zip(range(2, 2 + len(garbage)), warned):
        assert msg.startswith(f"{idx}:{lineno}: unreadable reply-index line skipped"), msg


# ---------------------------------------------------------------------------------------
# 12. push of a tampered release: one line, exit 2, no request reaches the Hub.


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from builder.release.manifest import verify_release, write_manifest

    folder = tmp_path_factory.mktemp("release") / "v0.1.0"
    (folder / "data/answer").mkdir(parents=True)
    pq.write_table(pa.table({"prompt": ["a", "b"], "answer": ["1", "2"]}), folder / "data/answer/train-00000-of-00001.parquet")
    card = {"dataset_info": [{"config_name": "answer", "splits": [{"name": "train", "num_examples": 2}]}]}
    (folder / "README.md").write_text(f"---\n{yaml.safe_dump(card)}---\n# tiny\n")
    (folder / "CHANGELOG.md").write_text("# v0.1.0\n")
    write_manifest(folder, {"version": "0.1.0", "tag": "v0.1.0", "configs": {"answer": {"num_examples": 2}}})
    assert verify_release(folder) == []  # intact: what the cases below break is what push refuses
    return folder


def _edit_data(r: Path) -> str:
    (f,) = (r / "data/answer").glob("*.parquet")
    f.write_bytes(f.read_bytes()[:-20] + b"x" * 20)
    return "data/answer/train-00000-of-00001.parquet: sha256 differs"


def _remove_file(r: Path) -> str:
    (r / "CHANGELOG.md").unlink()
    return "CHANGELOG.md: listed in the manifest but missing"


def _corrupt_manifest(r: Path) -> str:
    (r / "manifest.json").write_text('{"version": "0.1.0", "files": {')
    return "manifest.json: not valid JSON"


def _manifest_not_a_table(r: Path) -> str:
    (r / "manifest.json").write_text("[1, 2]")
    return "manifest.json: not a release manifest"


def _manifest_entry_without_hash(r: Path) -> str:
    doc = json.loads((r / "manifest.json").read_text())
    doc["files"]["README.md"] = "oops"
    del doc["configs"]["answer"]["num_examples"]
    (r / "manifest.json").write_text(json.dumps(doc))
    return "README.md: sha256 differs"


TAMPER = {"edit_data": _edit_data, "remove_file": _remove_file, "corrupt_manifest": _corrupt_manifest,
          "manifest_not_a_table": _manifest_not_a_table, "entry_without_hash": _manifest_entry_without_hash}  # fmt: skip


@pytest.mark.parametrize("tamper", list(TAMPER))
def test_push_of_tampered_release_uploads_nothing(tiny_release: Path, tmp_path: Path, tamper: str) -> None:
    from tests.servers.hub_server import run_hub_server

    copy = tmp_path / "v0.1.0"
    shutil.copytree(tiny_release, copy)
    expect = TAMPER[tamper](copy)
    token = "hf_writeTokenForBadInputTests"
    with run_hub_server(tokens={token: "write"}) as hub:
        done = run("push", copy, "--repo", "org/tiny", "--endpoint", hub.endpoint,
                   child=tamper == "edit_data", env={"HF_TOKEN": token})  # fmt: skip
        one_line_error(*done, f"{copy}: not a verified release: {expect}", "rebuild it with `release`")
        assert hub.requests_log == []


def test_an_error_naming_markup_like_text_prints_as_is(tmp_path: Path) -> None:
    """Paths and ids like `a[/b]` are rich markup: the error line must print them, not crash."""
    from typer.testing import CliRunner

    from builder.cli import app

    missing = tmp_path / "a[/b]" / "recipe.yaml"
    res = CliRunner().invoke(app, ["curate", str(missing), "--work", str(tmp_path / "w")])
    assert res.exit_code == 2 and "a[/b]" in res.output and "internal error" not in res.output
