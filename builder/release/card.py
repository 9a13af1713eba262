"""README.md for the Hub: YAML front matter built with the Hub's own card classes
(`DatasetCardData`, datasets' `DatasetInfosDict` / `MetadataConfigs`) and checked against the
Hub's metadata rules (`problems`), and the body rendered from a jinja2 template (the
top-level `dataset_card.md`, or the recipe's `release.card_template`) with real figures.

A template naming a field the release does not provide is a user error (one line naming
the template, its line and the field), found before anything is rendered.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from builder.config.release import HUB_LICENSES, HUB_TASKS, ISO_639
from builder.errors import UserError
from builder.release.licenses import table_cell
from builder.rows import VARIANT_FEATURES
from builder.schema import Features

TEMPLATE = Path(__file__).resolve().parents[2] / "dataset_card.md"
DEFAULT_CONFIG = "answer"  # `load_dataset(repo)` with no config name loads the paper's best variant
LICENSE_FILE = "LICENSE.md"  # the `license_link` of a release labelled `other`
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M")
ANNOTATIONS = ("found", "crowdsourced", "expert-generated", "machine-generated", "no-annotation", "other")
LICENSE_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]*")


def size_category(n: int) -> str:
    for limit, label in zip((1_000, 10_000, 100_000, 1_000_000, 10_000_000), SIZE_CATEGORIES):
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
    source_datasets: list[str] | None = None,
    license_name: str | None = None,
    features: dict[str, Features] | None = None,
) -> str:
    """YAML: the Hub metadata, `configs:` (data_files per variant, `answer` the default) and
    `dataset_info:` (features, splits); a config named in `features` has its own (`pairs`)."""
    other = license_id == "other" or (isinstance(license_id, list) and "other" in license_id)
    extra: dict[str, Any] = {"license_name": license_name, "license_link": LICENSE_FILE} if other else {}
    data = DatasetCardData(
        license=license_id, language=languages, task_categories=task_categories, pretty_name=pretty_name,
        size_categories=[size_category(max((c["num_examples"] for c in configs.values()), default=0))], tags=tags,
        annotations_creators=["machine-generated"], language_creators=["found", "machine-generated"],
        multilinguality=["multilingual" if len(languages) > 1 else "monolingual"],
        source_datasets=source_datasets or ["original"], **extra,
    )
    infos = {
        name: DatasetInfo(
            features=(features or {}).get(name, VARIANT_FEATURES).to_datasets(), config_name=name,
            splits=SplitDict({"train": SplitInfo("train", num_bytes=c["num_bytes"], num_examples=c["num_examples"])}),
            download_size=c["download_size"], dataset_size=c["num_bytes"],
        )
        for name, c in configs.items()
    }
    DatasetInfosDict(infos).to_dataset_card_data(data)
    default = DEFAULT_CONFIG if DEFAULT_CONFIG in configs else next(iter(configs), None)
    MetadataConfigs({
        name: {"data_files": [{"split": "train", "path": f"data/{name}/train-*.parquet"}],
               **({"default": True} if name == default else {})}
        for name in configs
    }).to_dataset_card_data(data)
    return data.to_yaml().rstrip("\n") + "\n"


def _list(v: Any) -> list[Any]:
    return [] if v is None else (v if isinstance(v, list) else [v])


def problems(readme_text: str) -> list[str]:
    """What the Hub's metadata rules (huggingface.co/docs/hub/datasets-cards) say is wrong with
    a card, read back through `DatasetCard`: empty when it is fine."""
    try:
        data: DatasetCardData = DatasetCard(readme_text).data
    except ValueError as e:  # invalid YAML, or YAML that is not a mapping
        return [f"README.md: metadata: {str(e).splitlines()[0][:160]}"]
    meta = data.to_dict()
    out: list[str] = []
    licenses = _list(meta.get("license"))
    if not licenses:
        out.append("README.md: metadata: no `license`")
    out += [f"README.md: metadata: license {lic!r} is not a Hub license id" for lic in licenses if lic not in HUB_LICENSES]
    if "other" in licenses:
        if not LICENSE_NAME.fullmatch(str(meta.get("license_name") or "")):
            out.append("README.md: metadata: license `other` needs a `license_name` (lowercase id, e.g. my-license-1.0)")
        if not meta.get("license_link"):
            out.append("README.md: metadata: license `other` needs a `license_link` (a URL or a file in the repo)")
    languages = _list(meta.get("language"))
    if not languages:
        out.append("README.md: metadata: no `language`")
    out += [f"README.md: metadata: language {c!r} is not an ISO 639 code" for c in languages
            if not ISO_639.fullmatch(str(c))]
    out += [f"README.md: metadata: size category {s!r} is not one of the Hub's" for s in _list(meta.get("size_categories"))
            if s not in (*SIZE_CATEGORIES, "100M<n<1B", "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T", "other")]
    out += [f"README.md: metadata: annotations_creators {a!r} is not one of {list(ANNOTATIONS)}"
            for a in _list(meta.get("annotations_creators")) if a not in ANNOTATIONS]
    out += [f"README.md: metadata: task category {t!r} is not one of the Hub's" for t in _list(meta.get("task_categories"))
            if t not in HUB_TASKS]
    out += [f"README.md: metadata: source_datasets entry {s!r} is not original, extended or extended|<id>"
            for s in _list(meta.get("source_datasets"))
            if not (s in ("original", "extended") or (isinstance(s, str) and s.startswith("extended|") and len(s) > 9))]
    configs = _list(meta.get("configs"))
    names = [c.get("config_name") for c in configs if isinstance(c, dict)]
    defaults = [c.get("config_name") for c in configs if isinstance(c, dict) and c.get("default")]
    if configs and len(defaults) != 1:
        out.append(f"README.md: metadata: {len(defaults)} configs marked `default: true`; exactly one must be")
    infos = {i.get("config_name") for i in _list(meta.get("dataset_info")) if isinstance(i, dict)}
    out += [f"README.md: metadata: config {n} has no `dataset_info` entry" for n in names if n not in infos]
    return out


def _line_of(source: str, name: str) -> int:
    m = re.search(r"{[{%][^}]*\b" + re.escape(name) + r"\b", source)
    return source.count("\n", 0, m.start()) + 1 if m else 0


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["n"] = lambda v: f"{v:,}" if isinstance(v, int) else ("—" if v is None else str(v))
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f}%"
    env.filters["cell"] = table_cell
    return env


@functools.lru_cache(maxsize=4)
def _compiled(source: str) -> tuple[frozenset[str], jinja2.Template]:
    """A template's fields and its compiled form, from one parse: a release checks the fields
    before the gates and renders after them (each parse of the default card costs ~0.1 s of CPU)."""
    env = _environment()
    parsed = env.parse(source)
    return frozenset(jinja2.meta.find_undeclared_variables(parsed)), env.from_string(parsed)


def _load(template: Path) -> tuple[str, frozenset[str], jinja2.Template]:
    try:
        source = template.read_text(encoding="utf-8")  # not the locale's: the card is UTF-8 on the Hub
    except OSError as e:
        raise UserError(f"{template}: cannot read the card template ({e.strerror}); fix release.card_template") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{template}: byte {e.start} is not UTF-8; save the card template as UTF-8") from None
    try:
        return (source, *_compiled(source))
    except jinja2.TemplateSyntaxError as e:
        raise UserError(f"{template}: line {e.lineno}: not a valid card template ({e.message})") from None


def _check(template: Path, source: str, names: frozenset[str], fields: Iterable[str]) -> None:
    known = set(fields)
    unknown = sorted(names - known)
    if unknown:
        more = f" (+{len(unknown) - 1} more)" if len(unknown) > 1 else ""
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"{template}: line {_line_of(source, unknown[0])}: unknown field {unknown[0]!r}{more}; "
                        f"{hint}the card's fields are: {', '.join(sorted(known))}")


def check_fields(template: Path, fields: Iterable[str]) -> None:
    """Refuse a template that names a field outside `fields` (one line: template, line, field)."""
    _check(template, *_load(template)[:2], fields)


def render(context: dict[str, Any], template: Path = TEMPLATE) -> str:
    """The card body from `template`; a field the context lacks, a syntax error or an attribute
    the data lacks is one line naming the template and line."""
    source, names, compiled = _load(template)
    _check(template, source, names, context)
    try:
        return compiled.render(**context)
    except jinja2.UndefinedError as e:
        raise UserError(f"{template}: {e.message}; see the card's fields in builder/release/context.py") from None
