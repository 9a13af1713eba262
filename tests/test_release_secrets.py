"""The release's leak guards: a key from the environment anywhere in the release (a data shard's
decoded text included) refuses it, and the published recipe.yaml names no local path or private
endpoint (markers instead, the originals' hashes in the manifest)."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder import tables
from builder.errors import SECRET_ENVS_VAR, UserError
from builder.recipe import load_recipe
from builder.release.folder import secret_in_parquet
from builder.release.manifest import sha256_file, verify_release
from builder.release.redact_recipe import KEY_ENV, LOCAL_PATH, PRIVATE_ENDPOINT, keyed_hash, marker, redact_text
from builder.release.stage import run_release
from tests.test_release_helpers import SAMPLE, build_work, rewrite_variant, write_recipe

# No token shape (sk-…, hf_…) and, under DS_ACCESS, no key-like env name: only the recipe's
# `api_key_env` makes it a secret.
KEY = "Zq7plantedDsCredential4711xYw"
PRIVATE_URL = "http://10.1.2.3:8000/v1"


def sha(s: str) -> str:
    return keyed_hash(s)  # under the tests' key (tests/conftest.py)


def teacher_section(base_url: str, env: str) -> str:
    return textwrap.dedent(f"""\
        generate:
          teachers:
            - name: r1
              kind: openai
              model: deepseek-reasoner
              endpoints:
                - {{base_url: "{base_url}", api_key_env: {env}}}  # the lab's vLLM box, 10.1.2.3
                - {{base_url: https://api.deepseek.com/v1, api_key_env: {env}}}
        """)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Registered api_key_env names are restored afterwards (load_recipe adds to them)."""
    monkeypatch.delenv(SECRET_ENVS_VAR, raising=False)
    return monkeypatch


def files_naming(folder: Path, needle: str) -> list[str]:
    """What `grep -rl needle folder` lists."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and needle.encode() in p.read_bytes())


@pytest.mark.parametrize("env", ["DS_CRED", "DS_ACCESS"])
def test_key_echoed_in_a_reply_refuses_the_release(tmp_path: Path, secret_env: pytest.MonkeyPatch, env: str) -> None:
    secret_env.setenv(env, KEY)
    work = build_work(tmp_path / "work")
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", extra=teacher_section("https://api.deepseek.com/v1", env)))

    # As if the teacher had echoed its key at the end of a reply and the responses stage had
    # let it through: every variant built from that reply carries it.
    prompt_id = pq.read_table(work.shards(tables.variant("answer"))[1]).column("prompt_id")[5].as_py()

    def echo(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            if r["prompt_id"] == prompt_id:
                r["messages"][-1]["content"] += f"\n\nMy API key is {KEY}."

    for variant in ("answer", "think_summary", "full"):
        rewrite_variant(work, variant, echo)
    with pytest.raises(UserError) as e:
        run_release(recipe, work, tmp_path / "releases" / "v0.1.0")
    msg = str(e.value)
    assert msg.startswith("release refused: a secret from the environment appears in "
                          "data/answer/train-00001-of-00004.parquet, column messages.content, row 5"), msg
    assert msg.endswith("(and 2 more file(s)); remove it from the recipe or data and re-run"), msg
    assert "\n" not in msg and KEY not in msg
    assert not (tmp_path / "releases" / "v0.1.0").exists()
    assert not list((tmp_path / "releases").glob(".*")), "a temp folder was left behind"


def test_secret_in_parquet_names_column_and_row_through_lists_and_structs(tmp_path: Path) -> None:
    rows = [{"id": str(i), "codes": ["a", "b"], "messages": [{"role": "user", "content": f"q{i}"}]} for i in range(5000)]
    rows[4321]["codes"].append(f"x{KEY}y")
    rows[4400]["messages"][0]["content"] = KEY
    path = tmp_path / "s.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd", row_group_size=1000)
    assert secret_in_parquet(path, ["absent-needle", KEY]) == "column codes, row 4321"
    assert secret_in_parquet(path, ["absent-needle"]) is None
    # The footer (key-value metadata) is read too.
    table = pa.Table.from_pylist(rows[:3]).replace_schema_metadata({"note": KEY})
    pq.write_table(table, path)
    assert secret_in_parquet(path, [KEY]) == "footer"


def test_published_recipe_names_no_local_path_or_private_host(tmp_path: Path,
                                                              secret_env: pytest.MonkeyPatch) -> None:
    secret_env.setenv("DS_CRED", KEY)
    work = build_work(tmp_path / "work")
    # The fixture recipe's sources are absolute paths on this machine (under SAMPLE).
    source = tmp_path / "r.yaml"
    recipe = load_recipe(write_recipe(source, extra=f"# traces copied from {SAMPLE}/raw/\n"
                                      + teacher_section(PRIVATE_URL, "DS_CRED")))
    out = tmp_path / "releases" / "v0.1.0"
    run_release(recipe, work, out)

    published = (out / "recipe.yaml").read_text()
    pcmb = str(SAMPLE / "pcmb_traces.jsonl")
    assert f"path: {marker(LOCAL_PATH, pcmb)}\n" in published
    assert f'base_url: "{marker(PRIVATE_ENDPOINT, PRIVATE_URL)}"' in published
    assert "base_url: https://api.deepseek.com/v1" in published  # a public host stays
    assert "# the lab's vLLM box, <private endpoint hmac:" in published  # comments kept, hidden
    for original in (str(SAMPLE), "10.1.2.3", str(tmp_path)):
        assert files_naming(out, original) == [], original
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"] == {"file": "recipe.yaml", "sha256": sha256_file(out / "recipe.yaml"),
                                  "source_sha256": recipe.sha256}
    redacted = manifest["redacted"]
    assert {"key_path": "sources[0].path", "kind": LOCAL_PATH, "hmac_sha256": sha(pcmb)} in redacted
    assert {"key_path": "generate.teachers[0].endpoints[0].base_url", "kind": PRIVATE_ENDPOINT,
            "hmac_sha256": sha(PRIVATE_URL)} in redacted
    assert {"key_path": "#comment", "kind": PRIVATE_ENDPOINT, "hmac_sha256": sha("10.1.2.3")} in redacted
    assert {"key_path": "#comment", "kind": LOCAL_PATH, "hmac_sha256": sha(f"{SAMPLE}/raw/")} in redacted
    assert not any(r["key_path"].endswith("endpoints[1].base_url") for r in redacted)
    assert verify_release(out) == []
    assert load_recipe(out / "recipe.yaml").sources[0].path == marker(LOCAL_PATH, pcmb)  # still a valid recipe


@pytest.mark.parametrize("url", ["http://localhost:8000/v1", "http://127.0.0.1:8000/v1", "http://[::1]:8000/v1",
                                 "http://172.20.0.5/v1", "http://192.168.1.9:8000", "http://gpu-node-7:8000/v1",
                                 "https://vllm.internal/v1", "http://box.local:8000/v1", "gpu01:8000/v1"])
def test_private_endpoints_are_redacted(url: str) -> None:
    out = redact_text(f"endpoints:\n  - base_url: {url}\n")
    assert out.text == f"endpoints:\n  - base_url: {marker(PRIVATE_ENDPOINT, url)}\n"
    assert [(r.key_path, r.kind, r.hmac_sha256) for r in out.redacted] == [("endpoints[0].base_url", PRIVATE_ENDPOINT, sha(url))]


def test_relative_paths_public_hosts_and_text_stay() -> None:
    raw = textwrap.dedent("""\
        sources:
          - {name: a, path: ../data/sample/a.jsonl}
          - {name: b, path: data/b.jsonl, reference_regex: "#### *(.+)$"}
        base_url: https://api.deepseek.com/v1
        store: hf://datasets/org/name
        system: "/no_think Answer A/B/C. </think>"
        prompts_dir: prompts
        """)
    assert redact_text(raw).text == raw and redact_text(raw).redacted == []


def test_paths_anywhere_and_escaped_values() -> None:
    raw = textwrap.dedent("""\
        # made on /home/me/proj from ~/datasets
        description: Traces under /mnt/share/r1/ and ../data/x.
        executor: {venv_path: /data}
        data_dir: "C:\\\\Users\\\\me\\\\d"
        odd: "/home/me/\\u00e9t\\u00e9/x"
        """)
    out = redact_text(raw)
    for original in ("/home/me", "~/datasets", "/mnt/share", "venv_path: /data", "C:", "me/"):
        assert original not in out.text, original
    assert "../data/x." in out.text
    # An original written with YAML escapes cannot be replaced in the text: the values are
    # dumped instead (comments lost, nothing named).
    assert out.text.startswith("# Published by answer-distill") and "/home/me/été/x" not in out.text
    assert {r.key_path for r in out.redacted} == {"#comment", "description", "executor.venv_path", "data_dir", "odd"}


def test_secret_in_json_typed_tools_and_tool_calls_is_found(tmp_path: Path) -> None:
    # `tools` and `tool_calls` are Json (an Arrow extension type over strings): searched too.
    from builder.rows import VARIANT_FEATURES, arrow_table, json_text

    base = {k: None for k in VARIANT_FEATURES}
    call = json_text({"type": "function", "function": {"name": "login", "arguments": {"token": KEY}}})
    rows = [{**base, "prompt_id": str(i), "quality_codes": [], "tools": [json_text({"function": {"name": "f"}})],
             "messages": [{"role": "assistant", "content": "", "tool_calls": [call] if i == 7 else None}]}
            for i in range(10)]
    path = tmp_path / "t.parquet"
    # No statistics: the footer would hold the min/max strings and catch what the scan missed.
    pq.write_table(arrow_table(rows, VARIANT_FEATURES), path, write_statistics=False)
    assert secret_in_parquet(path, [KEY]) == "column messages.tool_calls, row 7"
    rows[3]["tools"] = [json_text({"function": {"name": "f", "description": f"use {KEY}"}})]
    pq.write_table(arrow_table(rows, VARIANT_FEATURES), path, write_statistics=False)
    assert secret_in_parquet(path, [KEY]) == "column tools, row 3"


def test_redaction_hashes_are_keyed_so_private_addresses_cannot_be_enumerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = f"name: r\nbase_url: {PRIVATE_URL}\n"
    published = redact_text(raw)
    plain = hashlib.sha256(PRIVATE_URL.encode()).hexdigest()
    assert plain[:12] not in published.text and all(r.hmac_sha256 != plain for r in published.redacted)
    assert redact_text(raw).text == published.text  # same key: a re-run release is byte-identical
    assert redact_text(raw, hash_key=b"another builder").text != published.text
    # Without the variable, a random key is created once, private to the user, and reused.
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    first = redact_text(raw).text
    key_file = tmp_path / "cfg" / "answer-distill" / "redaction.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 64
    assert redact_text(raw).text == first != published.text
    assert os.environ.get(KEY_ENV) is None


def test_an_empty_redaction_key_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    key_file = tmp_path / "cfg" / "answer-distill" / "redaction.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("\n")
    with pytest.raises(UserError, match=r"redaction.key: the redaction key file is empty; delete it"):
        redact_text(f"base_url: {PRIVATE_URL}\n")
