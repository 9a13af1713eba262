"""Column declarations that give the Arrow schema `datasets.Features` would, without `datasets`.

`import datasets` costs ~0.7 CPU-s (it pulls pandas, huggingface_hub, fsspec…), paid by every
process that only writes a stage's parquet. A stage needs a table's column order and its Arrow
schema, whose `huggingface` metadata is how `datasets` reads the features back from a parquet
file; these stand-ins for the feature types the row schemas use build that same schema, metadata
bytes included (tests/test_schema.py checks every table against `datasets`), and `to_datasets()`
gives the real `datasets.Features` where one is needed (the release's card and checks).

    Value(dtype)   a scalar column: string, bool, int8…int64, uint8…uint64, float16/32/64
    List(feature)  a list of `feature` (variable length)
    Json()         JSON text in Arrow's canonical `arrow.json` extension type
    {name: ...}    a struct, fields in that order
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn, TypeAlias

import pyarrow as pa

_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(), "large_string": pa.large_string(), "bool": pa.bool_(),
    "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(), "uint64": pa.uint64(),
    "float16": pa.float16(), "float32": pa.float32(), "float64": pa.float64(),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Value:
    dtype: str

    def __post_init__(self) -> None:
        if self.dtype not in _ARROW:
            raise ValueError(f"Value({self.dtype!r}): not a dtype this module maps (one of {', '.join(_ARROW)})")

    def __repr__(self) -> str:
        return f"Value({self.dtype!r})"


@dataclass(frozen=True, slots=True)
class Json:
    def __repr__(self) -> str:
        return "Json()"


@dataclass(frozen=True, slots=True)
class List:
    feature: Feature

    def __repr__(self) -> str:
        return f"List({self.feature!r})"


Feature: TypeAlias = "Value | Json | List | dict[str, Feature]"


def arrow_type(feature: Feature) -> pa.DataType:
    if isinstance(feature, dict):
        return pa.struct([(name, arrow_type(f)) for name, f in feature.items()])
    if isinstance(feature, List):
        return pa.list_(arrow_type(feature.feature))
    if isinstance(feature, Json):
        return pa.json_()
    return _ARROW[feature.dtype]


def as_dict(feature: Feature) -> dict[str, Any]:
    """The feature as `datasets` serializes it into the schema metadata (`Features.to_dict`):
    default-valued fields left out, the class name under `_type` last."""
    if isinstance(feature, dict):
        return {name: as_dict(f) for name, f in feature.items()}
    if isinstance(feature, List):
        return {"feature": as_dict(feature.feature), "_type": "List"}
    if isinstance(feature, Json):
        return {"_type": "Json"}
    return {"dtype": feature.dtype, "_type": "Value"}


def _hf(feature: Feature, datasets: Any) -> Any:
    if isinstance(feature, dict):
        return {name: _hf(f, datasets) for name, f in feature.items()}
    if isinstance(feature, List):
        return datasets.List(_hf(feature.feature, datasets))
    if isinstance(feature, Json):
        return datasets.Json()
    return datasets.Value(feature.dtype)


class Features(dict[str, Feature]):
    """A table's columns, name → feature, in column order. Read-only, so the schema is built once."""

    def __init__(self, columns: dict[str, Feature]) -> None:
        super().__init__(columns)
        meta = json.dumps({"info": {"features": self.to_dict()}})  # json.dumps' spacing, as `datasets` writes it
        self.arrow_schema: pa.Schema = pa.schema(
            [pa.field(name, arrow_type(f)) for name, f in self.items()], metadata={"huggingface": meta}
        )

    def to_dict(self) -> dict[str, Any]:
        return as_dict(dict(self))

    def to_datasets(self) -> Any:
        """The same columns as `datasets.Features` (imports `datasets`: the release's use only)."""
        import datasets

        return datasets.Features(_hf(dict(self), datasets))

    def __reduce__(self) -> tuple[Any, ...]:  # pickle through __init__: __setitem__ refuses
        return (Features, (dict(self),))

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Features are read-only (their arrow_schema is built once): declare new ones")

    __setitem__ = __delitem__ = __ior__ = update = pop = popitem = clear = setdefault = _read_only  # type: ignore[assignment]
