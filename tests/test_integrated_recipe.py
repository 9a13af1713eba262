"""recipes/integrated.yaml (issue 14 item 10): the paper's first open question as a recipe that
plans offline and asks the teacher for concise reasoning inside its answer, on the sample's prompts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from builder.recipe import load_recipe
from builder.teachers.prompting import load_templates, template_for

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/integrated.yaml"


def test_integrated_recipe_uses_the_integrated_templates() -> None:
    r = load_recipe(RECIPE)
    (teacher,) = r.generate.teachers
    mapping = r.generate.templates_for(teacher)
    assert template_for("chat", mapping) == "integrated" and template_for("math", mapping) == "integrated-math"
    folder = r.resolve(r.generate.prompts_dir)
    tpls = load_templates(folder, set(mapping.values()))
    for t in tpls.values():
        # The paper's tag contract stays (the responses stage parses it); the answer opens with the key steps.
        assert "<think> reasoning process here </think> <answer> answer here </answer>" in (t.system or "")
        assert "key steps" in (t.system or "") and "no self-talk" in (t.system or "")
    assert "\\boxed{}" in tpls["integrated-math"].suffix and tpls["integrated"].suffix == ""
    assert r.variants.build == ["answer", "full"]  # no summary step


def test_integrated_recipe_curates_the_same_prompts_as_the_sample() -> None:
    """Same sources, curation and seed: the same prompt ids, so rows compare with think_summary."""
    r, sample = load_recipe(RECIPE), load_recipe(ROOT / "recipes/sample.yaml")
    assert [s.model_dump() for s in r.sources] == [s.model_dump() for s in sample.sources]
    assert r.curate.model_dump() == sample.curate.model_dump()
    assert r.student.model_dump() == sample.student.model_dump()


def test_plan_works_offline() -> None:
    proc = subprocess.run([sys.executable, "-m", "builder.cli", "plan", str(RECIPE)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={"COLUMNS": "200", "PATH": "", "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "r1-integrated" in proc.stdout and "deepseek-reasoner" in proc.stdout
