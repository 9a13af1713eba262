"""The `answer-distill constraints FILE.jsonl` reader: rows with `id` and `prompt` (or `messages`)
→ one `{"id", "constraints"}` object per row, IFEval ids and kwargs, for scoring from outside."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from builder.constraints.detect import detect, last_user_text
from builder.errors import UserError


def _text(row: Any, where: str) -> str:
    if not isinstance(row, dict) or "id" not in row:
        raise UserError(f"{where}: a row is an object with `id` and `prompt` (or `messages`)")
    if isinstance(row.get("prompt"), str):
        return row["prompt"]
    msgs = row.get("messages")
    if isinstance(msgs, list) and msgs and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in msgs):
        return last_user_text(msgs)
    raise UserError(f"{where}: row {row.get('id')!r} has no text `prompt` and no `messages` list of {{role, content}}")


def read_rows(path: Path) -> list[tuple[Any, str]]:
    """(id, prompt text) per row; the first bad row is a one-line UserError naming file:line."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a JSONL file of {{id, prompt}} rows")
    try:
        lines = path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines()  # a UTF-8 BOM is no row
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; give a JSONL file of {{id, prompt}} rows") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read it ({e.strerror}); check its permissions") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: not JSON ({e}); one object per line") from None
        out.append((row["id"] if isinstance(row, dict) and "id" in row else None, _text(row, f"{path}:{n}")))
    return out


def lines(path: Path) -> Iterator[str]:
    for rid, text in read_rows(path):
        yield orjson.dumps({"id": rid, "constraints": [c.as_dict() for c in detect(text)]}).decode()
