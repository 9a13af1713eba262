"""vLLM's context length holds the longest conversation the evaluation builds (MT-Bench's
second turn: question 1, answer 1 at the cap, question 2, then answer 2 at the cap), and
prompts that still do not fit are counted, not cut in silence. No GPU: lm-eval's model
factory is replaced by a recorder; the sizing and the call into it are the real ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from train_reference.evaluation import lmeval_runner
from train_reference.evaluation.config import EvalConfig, EvalUserError
from train_reference.evaluation.generation import contexts_cut


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    try:
        from builder.tokens import hf_tokenizer_dir

        return AutoTokenizer.from_pretrained(str(hf_tokenizer_dir("qwen2.5")))
    except Exception as exc:  # noqa: BLE001 - the pinned tokenizer files may be absent offline
        pytest.skip(f"no Qwen2.5 tokenizer files ({exc})")


def _model(tmp_path: Path, positions: int) -> tuple[Path, Any]:
    """A model folder with what the sizing reads: config.json and the tokenizer (no weights)."""
    from transformers import Qwen2Config

    tok = _tokenizer()
    out = tmp_path / f"model{positions}"
    Qwen2Config(max_position_embeddings=positions, num_hidden_layers=1).save_pretrained(out)
    tok.save_pretrained(out)
    return out, tok


def _words(tok: Any, n: int, word: str) -> str:
    """Text of about n tokens."""
    return tok.decode(tok(f" {word}" * (n + 50), add_special_tokens=False)["input_ids"][:n])


def _cfg(tmp_path: Path, tok: Any, cap: int, extra: dict[str, Any] | None = None) -> EvalConfig:
    questions = tmp_path / "question.jsonl"
    rows = [{"question_id": 1, "category": "writing", "turns": ["Short?", "Also short?"]},
            {"question_id": 2, "category": "writing",
             "turns": [_words(tok, 3000, "river"), _words(tok, 2000, "stone")]}]  # fmt: skip
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = {"questions": str(questions), "references": str(questions), "judge_prompts": str(questions)}
    return EvalConfig.model_validate({
        "backend": "vllm", "max_new_tokens": cap, "vllm_args": extra or {},
        "benchmarks": [{"name": "gsm8k", "task": "ad_gsm8k_local"}, {"name": "mt_bench", "data_files": files}],
    })  # fmt: skip


@pytest.fixture
def load_args(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What load_lm hands lm-eval's vLLM model (its factory recorded, not run)."""
    import lm_eval.api.registry as registry

    seen: list[dict[str, Any]] = []

    class Recorder:
        @staticmethod
        def create_from_arg_obj(args: dict[str, Any], extra: dict[str, Any]) -> str:
            seen.append(args)
            return "lm"

    monkeypatch.setattr(registry, "get_model", lambda name: Recorder if name == "vllm" else None)
    return seen


def test_vllm_window_holds_mt_bench_second_turn_with_a_full_first_answer(
    tmp_path: Path, load_args: list[dict[str, Any]]
) -> None:
    model, tok = _model(tmp_path, 32768)
    cap = 2048
    cfg = _cfg(tmp_path, tok, cap)
    assert lmeval_runner.load_lm("vllm", str(model), cfg, cfg.benchmarks) == "lm"
    window = load_args[0]["max_model_len"]
    # Turn 2 as it is sent: question 1, a first answer as long as the cap allows, question 2.
    q = [json.loads(line) for line in cfg.benchmarks[1].resolved_files()["questions"].open()][1]
    conv = [{"role": "user", "content": q["turns"][0]}, {"role": "assistant", "content": _words(tok, cap, "answer")},
            {"role": "user", "content": q["turns"][1]}]  # fmt: skip
    prompt = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    sent = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert sent > 7000 and sent + cap <= window, (sent, window)  # cap + 4096 (6144) cut it
    assert window < sent + cap + 200  # sized from it, not a guess many times too large
    assert load_args[0]["max_gen_toks"] == cap and load_args[0]["pretrained"] == str(model)


def test_vllm_window_is_capped_by_the_model_and_a_cap_it_cannot_hold_is_exit_2(
    tmp_path: Path, load_args: list[dict[str, Any]]
) -> None:
    model, tok = _model(tmp_path, 8192)
    lmeval_runner.load_lm("vllm", str(model), _cfg(tmp_path, tok, 2048), _cfg(tmp_path, tok, 2048).benchmarks)
    assert load_args[-1]["max_model_len"] == 8192  # vLLM refuses more than the model's positions
    big = _cfg(tmp_path, tok, 8192)
    with pytest.raises(EvalUserError, match="gsm8k: a generation cap of 8192 tokens does not fit the model.s 8192 positions; lower --max-new-tokens"):
        lmeval_runner.load_lm("vllm", str(model), big, big.benchmarks)


def test_a_recipes_own_vllm_window_is_kept(tmp_path: Path, load_args: list[dict[str, Any]]) -> None:
    # No tokenizer is read, and lm-eval is not given max_model_len beside max_length (it asserts).
    for key, other in (("max_model_len", "max_length"), ("max_length", "max_model_len")):
        cfg = _cfg(tmp_path, _tokenizer(), 1024, {key: 12345})
        lmeval_runner.load_lm("vllm", str(tmp_path / "absent"), cfg, cfg.benchmarks)
        assert load_args[-1][key] == 12345 and other not in load_args[-1]


def test_prompts_that_do_not_fit_the_window_are_counted() -> None:
    class LM:  # the parts of lm-eval's HF/vLLM LM that contexts_cut reads
        tokenizer = object()
        max_length = 100

        def apply_chat_template(self, conv: list[dict[str, str]], add_generation_prompt: bool) -> str:
            return " ".join(m["content"] for m in conv)

        def tok_encode(self, text: str) -> list[int]:
            return [0] * len(text.split())

    convs = [[{"role": "user", "content": "w " * n}] for n in (10, 60, 61, 90)]
    assert contexts_cut(LM(), convs, 40) == 2  # 61 and 90 words leave under 40 tokens of room
    served = LM()
    served.tokenizer = None  # type: ignore[assignment]
    assert contexts_cut(served, convs, 40) is None
