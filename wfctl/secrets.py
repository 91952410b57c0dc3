"""Secret masking: replace secret values, and the common encodings of them, by ``***``.

A :class:`Masker` is built once from the secret *values* of a run. It masks:

* the value itself, and the value with surrounding whitespace stripped (a secret read from
  a file usually ends in a newline);
* its JSON-escaped form (``json.dumps`` with and without ``ensure_ascii``), so a secret
  containing ``"`` or ``\\`` is still found inside JSON output;
* its base64 encoding, standard and URL-safe alphabets, with and without ``=`` padding,
  plus the stable middle part of the encoding at each of the three byte alignments, so the
  secret is also found when it was base64-encoded together with other data (as in an HTTP
  ``Basic`` header of ``user:secret``);
* its URL encoding (``quote`` with and without ``/`` kept, ``quote_plus``);
* its hexadecimal encoding, lower and upper case;
* for a multi-line secret (a PEM key), each of its lines on its own, so the live,
  line-by-line output view masks it too.

Values shorter than :data:`MIN_SECRET_LENGTH` (3) characters are *not* masked: masking
``"a"`` or ``"1"`` would destroy every line of output while protecting nothing. Pick real
secrets.

Secrets need not be strings (issue 15: a ``type: integer, secret: true`` input leaked).
A number is masked as text (``"pin=1234"``) and, in data, wherever the same number stands
(``{"pin": 1234}`` becomes ``{"pin": "***"}``); a list or mapping secret is masked by each
of its scalar leaves and by its JSON text. Renderings that take a secret apart are masked
too: a list of the secret's characters (``{{ secret | list }}``) has those items masked,
and the characters joined with one repeated separator (``{{ secret | join('-') }}``, the
JSON of that list) are masked in text. Booleans are never secrets (there are two of them).

Masking works on whole strings. Callers mask whole lines or whole outputs, never arbitrary
stream chunks: a secret written in two pieces (``printf abc; printf 'def\\n'``) is only
whole once the line is.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Masker"]

_NUMBER_TYPES = frozenset({int, float})

MASK = "***"
MIN_SECRET_LENGTH = 3
# An encoded fragment (base64 of part of a secret) is only masked when at least this long,
# to keep accidental matches on unrelated text negligible.
_MIN_FRAGMENT_LENGTH = 8


def _b64_variants(data: bytes) -> set[str]:
    out: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        full = encode(data).decode("ascii")
        out.add(full)
        out.add(full.rstrip("="))
        # The secret embedded at byte offset k (mod 3) of some longer encoded data: only the
        # 4-character groups made entirely of secret bytes are predictable.
        for k in range(3):
            enc = encode(b"\0" * k + data).decode("ascii")
            first_group = 1 if k else 0
            last_group = (k + len(data)) // 3  # exclusive
            core = enc[4 * first_group : 4 * last_group]
            if len(core) >= _MIN_FRAGMENT_LENGTH:
                out.add(core)
    return out


# Longest separator between spread-out characters: `", "` is what JSON puts in a list.
_MAX_SPREAD_SEPARATOR = 4
# Longer secrets are not looked for spread out (the pattern grows with the secret).
_MAX_SPREAD_SECRET = 128


def _texts(secret: Any) -> list[str]:
    """The texts a secret value stands for: itself, or its JSON and each scalar leaf."""
    match secret:
        case bool() | None:
            return []
        case str():
            return [secret]
        case int() | float():
            return [json.dumps(secret)]
        case dict():
            leaves = [*secret.keys(), *secret.values()]
        case list() | tuple():
            leaves = list(secret)
        case _:
            return [str(secret)]
    texts = [json.dumps(secret, ensure_ascii=False, default=str)]
    for leaf in leaves:
        texts += _texts(leaf)
    return texts


def _numbers(secret: Any) -> set[int | float]:
    """The numbers inside a secret value, masked where they stand in data."""
    match secret:
        case bool():
            return set()
        case int() | float():
            return {secret} if len(json.dumps(secret)) >= MIN_SECRET_LENGTH else set()
        case dict():
            return set().union(*map(_numbers, secret.values()), set())
        case list() | tuple():
            return set().union(*map(_numbers, secret), set())
    return set()


def _spread(secret: str, n: int) -> str | None:
    """A pattern for the secret's characters with one repeated separator between them
    (`n` names the pattern's group, unique in the masker's alternation)."""
    if not MIN_SECRET_LENGTH < len(secret) <= _MAX_SPREAD_SECRET:
        return None
    first, *rest = (re.escape(c) for c in secret)
    separator = f"(?P<sep{n}>[^\\w]{{1,{_MAX_SPREAD_SEPARATOR}}})"
    return first + separator + f"(?P=sep{n})".join(rest)


def _variants(secret: str) -> set[str]:
    candidates: set[str] = {secret, secret.strip()}
    if "\n" in secret:
        candidates.update(line.strip() for line in secret.splitlines())
    out: set[str] = set()
    for value in candidates:
        if len(value) < MIN_SECRET_LENGTH:
            continue
        out.add(value)
        out.add(json.dumps(value)[1:-1])
        out.add(json.dumps(value, ensure_ascii=False)[1:-1])
        # Python's repr (error messages from jsonschema, ValueError...) doubles backslashes.
        out.add(repr(value)[1:-1])
        out.add(value.encode("unicode_escape").decode("ascii"))
        out.add(quote(value, safe=""))
        out.add(quote(value))
        out.add(quote_plus(value))
        data = value.encode("utf-8")
        out.update(_b64_variants(data))
        out.add(data.hex())
        out.add(data.hex().upper())
    return {v for v in out if len(v) >= MIN_SECRET_LENGTH}


def _compile(secrets: frozenset[str]) -> re.Pattern[str] | None:
    """One alternation of every variant of every secret, then the spread-out forms."""
    variants: set[str] = set()
    for secret in secrets:
        variants |= _variants(secret)
    if not variants:
        return None
    # Longest first: the regex engine takes the first alternative that matches.
    ordered = [re.escape(v) for v in sorted(variants, key=lambda v: (-len(v), v))]
    spread = (_spread(s.strip(), n) for n, s in enumerate(sorted(secrets)))
    ordered += [pattern for pattern in spread if pattern is not None]
    return re.compile("|".join(ordered))


def _mask_spans(items: list[Any], spans: list[tuple[int, int]]) -> list[Any]:
    """The items of a list of strings overlapping a span of their concatenation, masked."""
    out: list[Any] = []
    start = 0
    for item in items:
        end = start + len(item)
        hit = item != "" and any(a < end and start < b for a, b in spans)
        out.append(MASK if hit else item)
        start = end
    return out


class Masker:
    """Replaces secret values (and encodings of them) in text by :data:`MASK`."""

    __slots__ = ("_numbers", "_pattern", "_secrets", "_values")

    def __init__(self, secrets: Iterable[Any] = ()) -> None:
        values = list(secrets)
        self._values: tuple[Any, ...] = tuple(values)
        texts = [t for value in values for t in _texts(value)]
        self._secrets: frozenset[str] = frozenset(
            t for t in texts if len(t.strip()) >= MIN_SECRET_LENGTH
        )
        self._numbers: frozenset[int | float] = frozenset().union(*map(_numbers, values))
        self._pattern: re.Pattern[str] | None = _compile(self._secrets)

    @classmethod
    def empty(cls) -> Masker:
        """A masker that masks nothing."""
        return cls(())

    def with_secrets(self, secrets: Iterable[Any]) -> Masker:
        """A new masker masking these secrets as well as ours."""
        return Masker([*self._values, *secrets])

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:  # never show the values
        return f"Masker(<{len(self._secrets)} secrets>)"

    def mask(self, text: str) -> str:
        """Return `text` with every secret (and encoded variant) replaced by ``***``."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask_data(self, obj: Any) -> Any:
        """Mask every string in a JSON-like structure (dict keys included); other values are
        returned unchanged. Containers are copied, never modified in place."""
        if self._pattern is None:
            return obj
        return self._mask_data(obj)

    def _mask_data(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.mask(obj)
        if isinstance(obj, dict):
            return {
                (self.mask(k) if isinstance(k, str) else k): self._mask_data(v)
                for k, v in obj.items()
            }
        if isinstance(obj, list | tuple):
            masked = self._mask_pieces([self._mask_data(v) for v in obj])
            return masked if isinstance(obj, list) else tuple(masked)
        if type(obj) in _NUMBER_TYPES and obj in self._numbers:
            return MASK
        return obj

    def _mask_pieces(self, items: list[Any]) -> list[Any]:
        """A list of strings that spells a secret when joined (``secret | list``): mask
        the items that make up the secret."""
        pattern = self._pattern
        if pattern is None or len(items) < 2 or not all(type(i) is str for i in items):
            return items
        spans = [m.span() for m in pattern.finditer("".join(items))]
        return _mask_spans(items, spans) if spans else items
