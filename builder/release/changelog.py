"""CHANGELOG.md: what changed since the previous release, then that release's own changelog.

Four parts, each from something both releases publish:
- content, per config: rows before / now, the content hash, and prompt_ids added, removed
  and with changed text (from the data files themselves, see `content.py`);
- the recipe: a key-path diff of the two published recipe.yaml files, grouped as teachers,
  templates, sampling, summarizer, balance and other (list items that have a `name` are
  matched by name, so reordering teachers is not a change);
- what made the rows: teachers, summarizers and template ids/hashes from the manifests;
- quality checks whose result changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from builder.release.content import ConfigContent

MISSING = object()
GROUPS = (  # (label, predicate on the key path), first match wins
    ("summarizer", lambda p: p.startswith("variants.summarizer")),
    ("teachers", lambda p: p.startswith("generate.teachers") and "sampling" not in p and "template" not in p),
    ("templates", lambda p: "template" in p or "prompts_dir" in p or "system_prompt" in p),
    ("sampling", lambda p: "sampling" in p or p.startswith("generate.samples")),
    ("balance", lambda p: p.startswith("curate.balance")),
)


def _signed(n: int) -> str:
    return f"+{n:,}" if n >= 0 else f"{n:,}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def flatten(node: Any, path: str = "") -> dict[str, Any]:
    """Leaf values by key path: `a.b[2]`, or `generate.teachers[r1].model` for named items.
    A null or empty value is the same as an absent key (the recipe's defaults apply to both)."""
    out: dict[str, Any] = {}
    if node is None or node == {} or node == []:
        return out
    if isinstance(node, dict):
        for k, v in node.items():
            out |= flatten(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list) and all(isinstance(x, dict) and "name" in x for x in node):
        for x in node:
            out |= flatten({k: v for k, v in x.items() if k != "name"}, f"{path}[{x['name']}]")
    else:
        out[path] = node
    return out


def _shown(v: Any) -> str:
    if v is MISSING:
        return "(not set)"
    text = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
    return f"`{text if len(text) <= 80 else text[:77] + '…'}`"


def recipe_diff(old_text: str | None, new_text: str | None) -> dict[str, list[str]]:
    """Changed key paths of two recipe texts, grouped; values shown short."""
    try:
        old = flatten(yaml.safe_load(old_text or "") or {})
        new = flatten(yaml.safe_load(new_text or "") or {})
    except yaml.YAMLError:
        return {"other": ["- the previous recipe.yaml could not be read"]}
    out: dict[str, list[str]] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, MISSING), new.get(key, MISSING)
        if a == b or key in ("version",):
            continue
        group = next((label for label, match in GROUPS if match(key)), "other")
        out.setdefault(group, []).append(f"- `{key}`: {_shown(a)} → {_shown(b)}")
    return out


def _content_table(content: dict[str, ConfigContent]) -> list[str]:
    lines = ["| config | rows before | rows now | change | added | removed | changed text | content sha256 |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for c, x in content.items():
        d = x.diff
        lines.append(f"| `{c}` | {x.rows_before:,} | {x.rows_now:,} | {_signed(x.rows_now - x.rows_before)} | "
                     f"{d.added:,} | {d.removed:,} | {d.changed:,} | `{(x.content_sha256 or 'removed')[:16]}` |")
    return lines


def _provenance_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (("teachers", "teachers"), ("summarizers", "summarizers"),
                       ("prompt_templates", "prompt templates"), ("summary_templates", "summary templates")):
        def norm(items: Any) -> set[str]:
            return {i if isinstance(i, str) else f"{i.get('model')} via {i.get('endpoint_kind')}"
                    for i in items or []}
        a, b = norm(old.get(key)), norm(new.get(key))
        if a != b:
            gone = ", ".join(f"`{x}`" for x in sorted(a - b)) or "none"
            came = ", ".join(f"`{x}`" for x in sorted(b - a)) or "none"
            lines.append(f"- {label}: removed {gone}; added {came}")
    return lines


def old_configs(previous: Path | None) -> list[str]:
    """The configs the previous release's manifest counts."""
    configs = _read_json(previous / "manifest.json").get("configs") if previous is not None else None
    return list(configs) if isinstance(configs, dict) else []


def render(version: str, date: str, quality: dict[str, Any], previous: Path | None,
           content: dict[str, ConfigContent], manifest: dict[str, Any], recipe_text: str | None) -> str:
    lines = [f"# Changelog\n\n## v{version} ({date})\n"]
    if previous is None:
        lines.append("First release.\n")
        lines += [f"- `{v}`: {s['rows']:,} rows, content sha256 `{(content[v].content_sha256 or '')[:16]}`"
                  for v, s in quality["variants"].items() if v in content]
        lines += [f"- `{c}`: {x.rows_now:,} rows, content sha256 `{(x.content_sha256 or '')[:16]}`"
                  for c, x in content.items() if c not in quality["variants"]]  # e.g. pairs: no quality entry
        return "\n".join(lines) + "\n"
    old_manifest = _read_json(previous / "manifest.json")
    old_quality = _read_json(previous / "quality.json")
    lines.append(f"Compared with v{old_manifest.get('version', '?')}.\n")
    lines.append("### Content\n")
    lines.append("Rows are matched by `prompt_id`; *changed text* counts prompts in both releases whose "
                 "trained-on text (`messages`, tool definitions) differs.\n")
    lines += _content_table(content)

    lines.append("\n### Recipe\n")
    old_recipe = previous / "recipe.yaml"
    changes = (recipe_diff(old_recipe.read_text(), recipe_text) if old_recipe.is_file()
               else {"other": ["- the previous release publishes no recipe.yaml to compare with"]})
    if not changes:
        lines.append("- no recipe change other than the version")
    for label in [g for g, _ in GROUPS] + ["other"]:
        if label in changes:
            lines.append(f"**{label}**\n")
            lines += changes[label] + [""]
    prov = _provenance_diff(old_manifest, manifest)
    if prov:
        lines.append("\n### What made the rows\n")
        lines += prov

    lines.append("\n### Rows per source\n")
    lines += ["| config | source | before | now | change |", "|---|---|---:|---:|---:|"]
    old_v, new_v = old_quality.get("variants", {}), quality["variants"]
    moved = False
    for v in sorted(set(old_v) | set(new_v)):
        b_src, n_src = old_v.get(v, {}).get("by_source", {}), new_v.get(v, {}).get("by_source", {})
        for src in sorted(set(b_src) | set(n_src)):
            d = n_src.get(src, 0) - b_src.get(src, 0)
            if d:
                moved = True
                lines.append(f"| `{v}` | {src} | {b_src.get(src, 0):,} | {n_src.get(src, 0):,} | {_signed(d)} |")
    if not moved:
        lines.append("| — | no source's row count changed | | | |")

    old_checks = {(c["variant"], c["check"]): c["success"] for c in old_quality.get("checks", [])}
    new_checks = {(c["variant"], c["check"]): c["success"] for c in quality.get("checks", [])}
    word = {True: "pass", False: "fail", None: "absent"}
    changed = [f"- `{k[0]}` {k[1]}: {word[old_checks.get(k)]} → {word[new_checks.get(k)]}"
               for k in sorted(set(old_checks) | set(new_checks)) if old_checks.get(k) != new_checks.get(k)]
    lines.append("\n### Quality checks whose result changed\n")
    lines += changed or ["- none"]
    prev_log = previous / "CHANGELOG.md"
    if prev_log.is_file():
        lines.append("\n" + prev_log.read_text().removeprefix("# Changelog\n").strip())
    return "\n".join(lines) + "\n"
