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


class Masker:
    """Replaces secret values (and encodings of them) in text by :data:`MASK`."""

    __slots__ = ("_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: frozenset[str] = frozenset(
            s for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_SECRET_LENGTH
        )
        variants: set[str] = set()
        for secret in self._secrets:
            variants |= _variants(secret)
        self._pattern: re.Pattern[str] | None = None
        if variants:
            # Longest first: the regex engine takes the first alternative that matches.
            ordered = sorted(variants, key=lambda v: (-len(v), v))
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    @classmethod
    def empty(cls) -> Masker:
        """A masker that masks nothing."""
        return cls(())

    def with_secrets(self, secrets: Iterable[str]) -> Masker:
        """A new masker masking these secrets as well as ours."""
        return Masker([*self._secrets, *secrets])

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
        if isinstance(obj, list):
            return [self._mask_data(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._mask_data(v) for v in obj)
        return obj
