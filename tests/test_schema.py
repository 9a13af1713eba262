"""builder/schema.py: every declared table's Arrow schema is the one `datasets` builds, metadata
bytes included (a parquet file's features are read back from it), and the stages' processes
run without importing `datasets`."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pytest

from builder import rows, tables
from builder.schema import Features, Json, List, Value

REPO = Path(__file__).resolve().parents[1]
ROW_FEATURES = {n: v for n, v in vars(rows).items() if n.endswith("_FEATURES")}
TABLES = {t.name: t for t in vars(tables).values() if isinstance(t, tables.Table)} | {
    "variant answer": tables.variant("answer")
}


def _hf_from_types(schema: pa.Schema) -> datasets.Features:
    """What `datasets` makes of the Arrow types alone (its own reading, not our metadata)."""
    return datasets.Features.from_arrow_schema(schema.remove_metadata())


def test_every_declaration_is_covered() -> None:
    assert len(ROW_FEATURES) == 7 and {"VARIANT_FEATURES", "PAIR_FEATURES", "PARSED_FEATURES"} <= set(ROW_FEATURES)
    assert {"prompts", "parsed", "quarantine", "pairs", "variant", "curate ledger"} <= set(TABLES)
    assert all(isinstance(f, Features) for f in ROW_FEATURES.values())


@pytest.mark.parametrize("features", [*ROW_FEATURES.values(), *(t.features for t in TABLES.values())],
                         ids=[*ROW_FEATURES, *TABLES])  # fmt: skip
def test_arrow_schema_is_datasets(features: Features) -> None:
    hf = _hf_from_types(features.arrow_schema)
    assert features.arrow_schema.equals(hf.arrow_schema, check_metadata=True)
    assert features.arrow_schema.metadata == hf.arrow_schema.metadata  # the very bytes
    assert features.to_datasets() == hf and isinstance(features.to_datasets(), datasets.Features)
    assert list(features.to_datasets()) == list(features) == features.arrow_schema.names
    assert features.to_dict() == hf.to_dict()


def test_nested_types_match_datasets() -> None:
    light = Features({"a": List({"x": Value("int64"), "j": List(Json())}), "b": Value("bool"), "c": Json(),
                      "d": {"f": Value("float32"), "l": List(Value("uint8"))}, "e": Value("large_string")})  # fmt: skip
    hf = datasets.Features({
        "a": datasets.List({"x": datasets.Value("int64"), "j": datasets.List(datasets.Json())}),
        "b": datasets.Value("bool"), "c": datasets.Json(),
        "d": {"f": datasets.Value("float32"), "l": datasets.List(datasets.Value("uint8"))},
        "e": datasets.Value("large_string"),
    })  # fmt: skip
    assert light.arrow_schema.equals(hf.arrow_schema, check_metadata=True)
    assert light.to_datasets() == hf
    assert repr(light["a"]) == "List({'x': Value('int64'), 'j': List(Json())})"
    with pytest.raises(ValueError, match="not a dtype"):
        Value("float")  # `datasets` would read this alias as float32: spell it out


def test_read_only_and_pickles() -> None:
    f = rows.LEDGER_FEATURES
    for change in (lambda: f.__setitem__("x", Value("string")), lambda: f.pop("stage"), lambda: f.update(x=1)):
        with pytest.raises(TypeError, match="read-only"):
            change()
    back = pickle.loads(pickle.dumps(rows.VARIANT_FEATURES))
    assert back == rows.VARIANT_FEATURES and back.arrow_schema.equals(rows.VARIANT_FEATURES.arrow_schema, check_metadata=True)


def _loaded_after(mods: list[str], probe: str) -> bool:
    code = f"import sys\nfor m in {mods!r}: __import__(m)\nprint({probe!r} in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300, cwd=REPO, env=env)
    return out.stdout.splitlines()[-1] == "True"


def test_stage_processes_do_not_import_datasets() -> None:
    mods = ["builder.responses.worker_preload", "builder.variants.stage", "builder.variants.tasks",
            "builder.responses.tasks", "builder.curate.stage", "builder.generate.stage", "builder.workdir"]  # fmt: skip
    assert not _loaded_after(mods, "datasets")


def test_preload_warms_pyarrow_pandas_shim() -> None:
    """pyarrow imports pandas at a process's first array from Python values: the responses
    preload does it once, so the workers forked from it do not each pay ~0.2 CPU-s."""
    assert _loaded_after(["builder.responses.worker_preload"], "pandas")
