"""README.md for the Hub: YAML front matter built with the Hub's own card classes, and the
body rendered from the top-level `dataset_card.md` template (jinja2) with real figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCardData

from builder.rows import VARIANT_FEATURES

TEMPLATE = Path(__file__).resolve().parents[2] / "dataset_card.md"


def size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def front_matter(
    configs: dict[str, dict[str, int]],
    license_id: str | list[str],
    languages: list[str],
    task_categories: list[str],
    tags: list[str],
    pretty_name: str,
) -> str:
    """YAML for `configs:` (data_files per variant) and `dataset_info:` (features, splits)."""
    data = DatasetCardData(
        license=license_id, language=languages, task_categories=task_categories, pretty_name=pretty_name,
        size_categories=[size_category(max((c["num_examples"] for c in configs.values()), default=0))], tags=tags,
    )
    infos = {
        name: DatasetInfo(
            features=VARIANT_FEATURES, config_name=name,
            splits=SplitDict({"train": SplitInfo("train", num_bytes=c["num_bytes"], num_examples=c["num_examples"])}),
            download_size=c["download_size"], dataset_size=c["num_bytes"],
        )
        for name, c in configs.items()
    }
    DatasetInfosDict(infos).to_dataset_card_data(data)
    MetadataConfigs(
        {name: {"data_files": [{"split": "train", "path": f"data/{name}/train-*.parquet"}]} for name in configs}
    ).to_dataset_card_data(data)
    return data.to_yaml().rstrip("\n") + "\n"


def render(context: dict[str, Any], template: Path = TEMPLATE) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["n"] = lambda v: f"{v:,}" if isinstance(v, int) else ("—" if v is None else str(v))
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f}%"
    return env.from_string(template.read_text()).render(**context)
