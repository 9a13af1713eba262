"""The recipe as a release publishes it: every local absolute path and every private or local
endpoint replaced by a marker such as `<local path hmac:1a2b3c4d5e6f>`, so a published
recipe.yaml names nothing of the builder's machine or network. The manifest keeps each
original's full keyed hash (`redacted`), so the builder can still prove which one was used.

The hash is an HMAC-SHA256 under the builder's own key, not a bare sha256: private addresses
and short paths are few enough that anyone could hash every candidate ("10.0.0.1:8000/v1" …)
and read the original back from a plain digest. The key comes from $ANSWER_DISTILL_REDACTION_KEY
or, by default, a random key created once in the user's config folder (never published); the
same key gives the same markers, so a re-run release is byte-identical.

Values are found by their shape, key names being only hints (a recipe section added later is
covered too), and the same strings are replaced in the raw text, so the published file keeps its comments
and layout; when the replaced text does not parse back to exactly the redacted values (an
original written with YAML escapes), the redacted values are dumped as YAML instead.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from builder.errors import UserError
from builder.recipe import Recipe

LOCAL_PATH = "local path"
PRIVATE_ENDPOINT = "private endpoint"
URL_CREDENTIALS = "url with credentials"

# Hosts that only resolve on the builder's own network (besides non-global IP addresses
# and bare hostnames without a dot, checked in `private_host`).
PRIVATE_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".localdomain", ".home.arpa", ".intranet")
# Keys whose values are files or folders: under them a one-segment absolute path ("/data")
# is a path too; elsewhere a lone "/word" is more likely text (Qwen's "/no_think").
PATH_KEY = re.compile(r"(^|_)(path|dir|file|folder|root)s?$")
# Keys whose values are endpoints even when written without a scheme ("10.1.2.3:8000/v1").
URL_KEY = re.compile(r"(^|_)(url|endpoint|host|server)s?$")

# Absolute paths inside free text (comments, descriptions): not after a word character, a
# dot, a slash or a colon, so relative paths ("../data/x", "data/x") and the path part of a
# URL never match. A leading "/" needs two segments for the reason given for PATH_KEY.
_END = r"[^\s'\"\[\]{},<>]"
PATH_IN_TEXT = re.compile(
    rf"(?<![\w.:/\\~$-])(?:~[\w.-]*/{_END}*|\$\{{?HOME\}}?/{_END}*|/[^\s/'\"\[\]{{}},<>]+/{_END}*|[A-Za-z]:[\\/]{_END}+)"
)
URL_IN_TEXT = re.compile(r"(?<![\w.+-])[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>\[\]{},]+")
_TRAILING = ".,;:!?)"  # sentence punctuation after a path in prose is not part of it
LOCAL_SCHEMES = {"file", "unix"}
# Schemes whose authority is a network host; any other (hf://, s3://) names a store's namespace.
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "grpc", "grpcs", "tcp", "udp", "ftp", "sftp", "ssh", "redis",
                   "rediss", "postgres", "postgresql", "mysql", "mongodb", "amqp", "nats", "kafka"}


@dataclass(frozen=True)
class Redaction:
    """One redacted value: where it was (a key path, or "#comment"), what it was, its keyed hash."""

    key_path: str
    kind: str
    hmac_sha256: str

    def as_dict(self) -> dict[str, str]:
        return {"key_path": self.key_path, "kind": self.kind, "hmac_sha256": self.hmac_sha256}


@dataclass(frozen=True)
class PublishedRecipe:
    """The text a release writes as recipe.yaml, and what was replaced in it."""

    text: str
    redacted: list[Redaction]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


KEY_ENV = "ANSWER_DISTILL_REDACTION_KEY"


def _key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "answer-distill" / "redaction.key"


def redaction_key() -> bytes:
    """The builder's key: from the environment, else the key file, created (0600) on first use."""
    if (env := os.environ.get(KEY_ENV, "")).strip():  # a blank one is unset: it would hash as plainly as none
        return env.encode()
    path = _key_file()
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = None
    if key == b"":  # an empty key would hash as plainly as no key: never use it
        raise UserError(f"{path}: the redaction key file is empty; delete it (a new key is made) or set {KEY_ENV}")
    if key is not None:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another release created it meanwhile
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


def keyed_hash(s: str, key: bytes | None = None) -> str:
    return hmac.new(key if key is not None else redaction_key(), s.encode(), hashlib.sha256).hexdigest()


def marker(kind: str, original: str, key: bytes | None = None) -> str:
    """What replaces `original`: its kind and a short keyed hash (the manifest holds the full one)."""
    return f"<{kind} hmac:{keyed_hash(original, key)[:12]}>"


def private_host(host: str) -> bool:
    """True for a host only the builder's machine or network can reach."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host:
        return True  # "http:///x", "unix://…": nothing public to name
    try:
        return not ipaddress.ip_address(host.split("%")[0]).is_global  # loopback, RFC 1918, link-local, ::1…
    except ValueError:
        pass
    return host == "localhost" or "." not in host or host.endswith(PRIVATE_SUFFIXES)


def url_kind(url: str) -> str | None:
    """The redaction kind of a URL, None when it may be published as written."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        password = parts.password
    except ValueError:  # a malformed port or bracket: do not guess, hide it
        return PRIVATE_ENDPOINT
    scheme = parts.scheme.lower()
    if scheme in LOCAL_SCHEMES:
        return LOCAL_PATH
    if scheme and scheme not in NETWORK_SCHEMES:
        return None  # hf://datasets/…, s3://bucket/…
    if private_host(host):
        return PRIVATE_ENDPOINT
    return URL_CREDENTIALS if password else None


def notable_host(endpoint: str) -> str | None:
    """The host of a private endpoint when it says something about the builder's network (not
    "localhost" or a loopback address, which every machine has)."""
    try:
        host = (urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or "").rstrip(".")
    except ValueError:
        return None
    if not host or host == "localhost":
        return None
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    return None if ip.is_loopback or ip.is_unspecified else host


def local_path(s: str, path_key: bool) -> bool:
    """True when the whole string is an absolute path on the builder's machine."""
    if "\n" in s or not s or (not path_key and any(c.isspace() for c in s)):
        return False  # "/no_think Answer …" is a prompt; a path with spaces sits under a path key
    if s.startswith(("~", "$HOME/", "${HOME}/")) or re.match(r"[A-Za-z]:[\\/]", s):
        return True
    if s.startswith("/") and not s.startswith("//"):
        return path_key or "/" in s[1:].rstrip("/")
    return False


def in_text(s: str) -> Iterator[tuple[str, str]]:
    """(kind, original) for every path or non-public URL inside a longer text."""
    for m in URL_IN_TEXT.finditer(s):
        url = m.group().rstrip(_TRAILING)
        kind = url_kind(url)
        if kind is not None:
            yield kind, url
    for m in PATH_IN_TEXT.finditer(s):
        path = m.group().rstrip(_TRAILING)
        if len(path) > 2:
            yield LOCAL_PATH, path


def found_in(value: str, key: str) -> list[tuple[str, str]]:
    """(kind, original) for one string value of the recipe: the whole value when it is a
    path or an endpoint, else whatever paths and endpoints its text mentions."""
    s = value.strip()
    key = key.lower()
    if local_path(s, bool(PATH_KEY.search(key))):
        return [(LOCAL_PATH, s)]
    if "://" in s and "\n" not in s and " " not in s:
        kind = url_kind(s)
        return [(kind, s)] if kind else []
    if URL_KEY.search(key) and s and "\n" not in s and " " not in s and not s.startswith("$"):
        kind = url_kind(f"//{s}")  # no scheme: the host comes first ("${VAR}" is an env reference)
        return [(kind, s)] if kind else []
    return list(in_text(s))


def strings(node: Any, path: str = "", key: str = "") -> Iterator[tuple[str, str, str]]:
    """(key path, key, value) for every string in the parsed recipe; a mapping's own keys
    come with an empty key (a key named `endpoints` is not itself an endpoint)."""
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(k, str):
                yield p, "", k
            yield from strings(v, p, str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, f"{path}[{i}]", key)
    elif isinstance(node, str):
        yield path, key, node


class Replacer:
    """Replaces each original where it stands as a whole: a path not inside a longer path or
    word ("/data" leaves "../data/x" and "hf://datasets" alone), a URL wherever it starts
    (a longer URL on the same host is hidden with it). Longest first, in one pass."""

    def __init__(self, kinds: dict[str, str], key: bytes) -> None:
        self.markers = {o: marker(k, o, key) for o, k in kinds.items()}
        alternatives = []
        for o in sorted(kinds, key=len, reverse=True):
            if "://" in o:
                alternatives.append(rf"(?<![\w.+-]){re.escape(o)}")
            else:
                alternatives.append(rf"(?<![\w.:/\\~$-]){re.escape(o)}(?![\w/\\-]|\.\w)")
        self.pattern = re.compile("|".join(f"(?:{a})" for a in alternatives)) if alternatives else None

    def __call__(self, s: str) -> str:
        return self.pattern.sub(lambda m: self.markers[m.group()], s) if self.pattern else s

    def left_in(self, s: str) -> bool:
        return bool(self.pattern and self.pattern.search(s))

    def found(self, s: str) -> list[str]:
        """The originals `s` names, each once, in order."""
        return list(dict.fromkeys(m.group() for m in self.pattern.finditer(s))) if self.pattern else []

    def tree(self, node: Any) -> Any:
        """The parsed recipe with every original replaced, in keys and values."""
        if isinstance(node, dict):
            return {self.tree(k): self.tree(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.tree(v) for v in node]
        return self(node) if isinstance(node, str) else node


def redact_text(raw: str, hash_key: bytes | None = None) -> PublishedRecipe:
    """The published form of a recipe's text (see the module docstring)."""
    hkey = hash_key if hash_key is not None else redaction_key()
    tree = yaml.safe_load(raw)
    kinds: dict[str, str] = {}  # original → kind
    where: list[tuple[str, str]] = []  # (key path, original)
    for path, key, value in strings(tree):
        for kind, original in found_in(value, key):
            kinds.setdefault(original, kind)
            where.append((path, original))
    # A private endpoint's host, named on its own elsewhere ("vLLM on 10.1.2.3"), is hidden too.
    hosts = Replacer({h: PRIVATE_ENDPOINT for o, k in kinds.items() if k == PRIVATE_ENDPOINT
                      and (h := notable_host(o)) and h not in kinds}, hkey)
    endpoints = Replacer(kinds, hkey)
    for path, _key, value in strings(tree):
        for h in hosts.found(endpoints(value)):  # not the host inside "gpu01:8000/v1" itself
            kinds.setdefault(h, PRIVATE_ENDPOINT)
            where.append((path, h))
    values = Replacer(kinds, hkey)
    expected = values.tree(tree)
    text = values(raw)
    # What the text still names that no value does sits in a comment: hide it there too.
    comments = {o: k for k, o in in_text(text) if o not in kinds}
    comments |= {h: PRIVATE_ENDPOINT for h in hosts.found(text)}
    if comments:
        text = Replacer(comments, hkey)(text)
        kinds |= comments
        where += [("#comment", o) for o in comments]
    if yaml.safe_load(text) != expected or Replacer(kinds, hkey).left_in(text):
        # An original written with YAML escapes, or a comment that could not be told apart
        # from a value: publish the redacted values alone (comments are lost, nothing leaks).
        text = "# Published by answer-distill: local paths and private endpoints replaced by markers.\n"
        text += yaml.safe_dump(expected, sort_keys=False, allow_unicode=True, width=120)
        if Replacer(kinds, hkey).left_in(text):  # cannot happen by construction; never publish it if it does
            raise UserError("release refused: the published recipe would still name a local path or private "
                            "endpoint; write it plainly (no YAML escapes) and re-run")
    seen: set[tuple[str, str]] = set()
    redacted = []
    for path, original in where:
        if (path, original) not in seen:
            seen.add((path, original))
            redacted.append(Redaction(path, kinds[original], keyed_hash(original, hkey)))
    return PublishedRecipe(text, redacted)


def published_recipe(recipe: Recipe) -> PublishedRecipe | None:
    """The recipe.yaml a release writes for `recipe` (None when it was not loaded from a file).
    Deterministic: the release stage writes it and the manifest hashes it, each calling this."""
    if recipe.path is None:
        return None
    raw = recipe.path.read_bytes()
    if recipe.sha256 and hashlib.sha256(raw).hexdigest() != recipe.sha256:
        # The release would publish a recipe other than the one it was built with.
        raise UserError(f"{recipe.path}: changed since it was loaded; re-run the release")
    return redact_text(raw.decode())
