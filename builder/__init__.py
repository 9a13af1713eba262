"""answer-distill: reasoning-model answers → SFT datasets (arXiv 2504.09639)."""

import os

__version__ = "0.1.0"

# loguru's defaults print every local variable of every frame when a task logs an exception
# (datatrove does, in each task): an API key in a client's frame would reach the task log
# and stderr. Set before loguru is first imported, here and in every worker (inherited env).
os.environ.setdefault("LOGURU_DIAGNOSE", "NO")
os.environ.setdefault("LOGURU_BACKTRACE", "NO")
