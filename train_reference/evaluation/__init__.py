"""Score a model the paper's way (arXiv 2504.09639, Table 1): lm-eval for the automatic
benchmarks, an OpenAI-compatible LLM judge for MT-Bench and AlignBench."""

from train_reference.evaluation.config import EvalConfig, EvalUserError, load_config
from train_reference.evaluation.runner import evaluate

__all__ = ["EvalConfig", "EvalUserError", "evaluate", "load_config"]
