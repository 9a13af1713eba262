"""CHANGELOG.md: the diff against the previous release (rows ± per variant and source,
checks whose result changed), followed by the previous release's own changelog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _signed(n: int) -> str:
    return f"+{n:,}" if n >= 0 else f"{n:,}"


def _read_quality(folder: Path) -> dict[str, Any]:
    path = folder / "quality.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def render(version: str, date: str, quality: dict[str, Any], previous: Path | None) -> str:
    lines = [f"# Changelog\n\n## v{version} ({date})\n"]
    if previous is None:
        lines.append("First release.\n")
        for v, s in quality["variants"].items():
            lines.append(f"- `{v}`: {s['rows']:,} rows")
        return "\n".join(lines) + "\n"
    old = _read_quality(previous)
    old_manifest = json.loads((previous / "manifest.json").read_text())
    lines.append(f"Compared with v{old_manifest.get('version', '?')}.\n")
    lines += ["| config | source | before | now | change |", "|---|---|---:|---:|---:|"]
    old_v, new_v = old.get("variants", {}), quality["variants"]
    for v in sorted(set(old_v) | set(new_v)):
        before, now = old_v.get(v, {}), new_v.get(v, {})
        lines.append(f"| `{v}` | **all** | {before.get('rows', 0):,} | {now.get('rows', 0):,} | "
                     f"{_signed(now.get('rows', 0) - before.get('rows', 0))} |")
        b_src, n_src = before.get("by_source", {}), now.get("by_source", {})
        for src in sorted(set(b_src) | set(n_src)):
            d = n_src.get(src, 0) - b_src.get(src, 0)
            if d:
                lines.append(f"| `{v}` | {src} | {b_src.get(src, 0):,} | {n_src.get(src, 0):,} | {_signed(d)} |")
    old_checks = {(c["variant"], c["check"]): c["success"] for c in old.get("checks", [])}
    new_checks = {(c["variant"], c["check"]): c["success"] for c in quality.get("checks", [])}
    changed = []
    for key in sorted(set(old_checks) | set(new_checks)):
        a, b = old_checks.get(key), new_checks.get(key)
        if a != b:
            word = {True: "pass", False: "fail", None: "absent"}
            changed.append(f"- `{key[0]}` {key[1]}: {word[a]} → {word[b]}")
    lines.append("\nChecks changed:\n")
    lines += changed or ["- none"]
    prev_log = previous / "CHANGELOG.md"
    if prev_log.is_file():
        lines.append("\n" + prev_log.read_text().removeprefix("# Changelog\n").strip())
    return "\n".join(lines) + "\n"
