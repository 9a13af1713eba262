"""Plain values across the sandbox wall: the encoder that runs inside, the strict decoder here.

Inside the sandbox (`ENCODER`, Python source run before the answer's code) a value becomes
JSON with type tags, so a tuple stays a tuple and 0.1 stays the same float. The answer may
rewrite that encoder — it runs in its process — but it never holds an expected value, so
the most it can do is send a value of its choosing, which it could return anyway.

Here (`decode`) nothing the sandbox sends is trusted: bounded size and depth, only the
tags below, and an `Opaque` stand-in (equal to nothing, truthiness undefined) for values
that were not plain data.
"""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64
MAX_ITEMS = 200_000

# Defines _enc(value) inside the sandbox; pure stdlib, names bound as defaults so a later
# rebinding of the builtins does not change what an honest run sends.
ENCODER = r"""
def _enc(v, _d=0, _n=None, _type=type, _len=len, _repr=repr, _str=str, _abs=abs, _sorted=sorted, _list=list):
    if _n is None:
        _n = [0]
    _n[0] += 1
    if _d > 64 or _n[0] > 200000:
        raise ValueError("value too large to send")
    t = _type(v)
    if v is None or t is bool or t is str:
        if t is str and _len(v) > 1000000:
            raise ValueError("string too large to send")
        return v
    if t is int:
        return v if _abs(v) < 2 ** 53 else {"i": _str(v)}
    if t is float:
        return {"f": _repr(v)}
    if t is complex:
        return {"c": [_repr(v.real), _repr(v.imag)]}
    if t is list:
        return [_enc(x, _d + 1, _n) for x in v]
    if t is tuple:
        return {"t": [_enc(x, _d + 1, _n) for x in v]}
    if t is dict:
        return {"d": [[_enc(k, _d + 1, _n), _enc(x, _d + 1, _n)] for k, x in v.items()]}
    if t is set or t is frozenset:
        return {("s" if t is set else "fs"): [_enc(x, _d + 1, _n) for x in _list(v)]}
    if t is bytes:
        return {"b": v.hex()}
    return {"x": _str(getattr(t, "__name__", "?"))[:80]}
"""


class Opaque:
    """A value that was not plain data (an object of the answer's own class, a function …)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        raise TypeError(f"the truth of a {self.type_name} value cannot be checked outside the sandbox")

    def __repr__(self) -> str:
        return f"<opaque {self.type_name}>"


class BadValue(ValueError):
    """What the sandbox sent is not a value this decoder accepts."""


def _float(text: Any) -> float:
    if not isinstance(text, str) or len(text) > 64:
        raise BadValue("bad float")
    return float(text)


def decode(obj: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """The plain Python value an encoded object stands for; raises BadValue on anything else."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        raise BadValue("value too deep or too large")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):  # not what our encoder sends, but a plain float all the same
        return obj
    if isinstance(obj, list):
        return [decode(x, depth + 1, budget) for x in obj]
    if not isinstance(obj, dict) or len(obj) != 1:
        raise BadValue("unknown encoding")
    ((tag, body),) = obj.items()
    if tag == "f":
        return _float(body)
    if tag == "i":
        if not isinstance(body, str) or len(body) > 4000:
            raise BadValue("bad int")
        return int(body)
    if tag == "c" and isinstance(body, list) and len(body) == 2:
        return complex(_float(body[0]), _float(body[1]))
    if tag == "b" and isinstance(body, str):
        return bytes.fromhex(body)
    if tag == "x" and isinstance(body, str):
        return Opaque(body[:80])
    if not isinstance(body, list):
        raise BadValue("unknown encoding")
    if tag == "t":
        return tuple(decode(x, depth + 1, budget) for x in body)
    if tag in ("s", "fs"):
        items = [decode(x, depth + 1, budget) for x in body]
        try:
            return set(items) if tag == "s" else frozenset(items)
        except TypeError:
            raise BadValue("unhashable set member") from None
    if tag == "d":
        out = {}
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2:
                raise BadValue("bad dict item")
            try:
                out[decode(pair[0], depth + 1, budget)] = decode(pair[1], depth + 1, budget)
            except TypeError:
                raise BadValue("unhashable dict key") from None
        return out
    raise BadValue("unknown encoding")


def decode_results(raw: Any, n: int) -> list[tuple[bool, Any]]:
    """[(ok, value or error name)] for `n` calls from a harness report; BadValue if malformed."""
    if not isinstance(raw, list) or len(raw) != n:
        raise BadValue("wrong number of results")
    out: list[tuple[bool, Any]] = []
    for item in raw:
        if isinstance(item, dict) and set(item) == {"v"}:
            out.append((True, decode(item["v"])))
        elif isinstance(item, dict) and set(item) == {"e"} and isinstance(item["e"], str):
            out.append((False, item["e"][:80]))
        else:
            raise BadValue("bad result item")
    return out
