"""The quality report: which checks passed, which block the release, and `quality.json`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quality.suites import CheckOutcome


def failures(outcomes: list[CheckOutcome], blocking: list[str]) -> tuple[list[CheckOutcome], list[CheckOutcome]]:
    """(blocking failures, non-blocking failures), decided by our config, not GX severity."""
    failed = [o for o in outcomes if not o.success]
    return [o for o in failed if o.check in blocking], [o for o in failed if o.check not in blocking]


def one_line(o: CheckOutcome) -> str:
    what = f"{o.unexpected_count:,} of {o.element_count:,} rows" if o.element_count else (o.detail or "failed")
    col = f" {o.column}" if o.column else ""
    ex = f" (e.g. {', '.join(map(str, o.examples[:3]))})" if o.examples else ""
    return f"{o.variant}: {o.check} ({o.expectation}{col}): {what}{ex}"


def checks_table(outcomes: list[CheckOutcome], blocking: list[str]) -> list[dict[str, Any]]:
    """Per (variant, check): pass/fail, blocking or not, and the unexpected rows summed."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for o in outcomes:
        r = rows.setdefault((o.variant, o.check), {"variant": o.variant, "check": o.check, "success": True,
                                                    "blocking": o.check in blocking, "unexpected": 0})
        r["success"] = r["success"] and o.success
        r["unexpected"] += o.unexpected_count
    return sorted(rows.values(), key=lambda r: (r["variant"], r["check"]))


def write_quality_json(path: Path, payload: dict[str, Any], outcomes: list[CheckOutcome], blocking: list[str]) -> None:
    block, warn = failures(outcomes, blocking)
    doc = {
        **payload,
        "blocking_checks": blocking,
        "passed": not block,
        "blocking_failures": [one_line(o) for o in block],
        "warnings": [one_line(o) for o in warn],
        "checks": checks_table(outcomes, blocking),
        "expectations": [asdict(o) for o in outcomes],
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
