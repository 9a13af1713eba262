"""Session fixtures shared by test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Releases hash redacted paths under the builder's key (builder/release/redact_recipe.py): a fixed
# one here, so no test writes a key file into the user's config folder and markers are stable.
os.environ.setdefault("ANSWER_DISTILL_REDACTION_KEY", "tests-only-redaction-key")


@dataclass
class SampleBuild:
    release: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> SampleBuild:
    """`answer-distill build recipes/sample.yaml`, built once per session: the release folder and
    what the command printed (stdout and stderr apart).

    Runs the real CLI in a child process (~12 s, offline), exactly as the README tells users to.
    """
    work = tmp_path_factory.mktemp("sample-build")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "builder.cli", "build", str(ROOT / "recipes" / "sample.yaml"), "--work", str(work)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    release = work / "release"
    if done.returncode != 0 or not (release / "README.md").is_file():
        pytest.fail(f"sample build failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return SampleBuild(release, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def sample_release(sample_build: SampleBuild) -> Path:
    """The Hub-ready folder of the session's sample build."""
    return sample_build.release
