"""Secret masking: plain values and their encoded variants, on strings and data."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus, urlencode

from hypothesis import given
from hypothesis import strategies as st

from wfctl.secrets import MASK, Masker


def test_plain_value_is_masked_everywhere() -> None:
    m = Masker(["s3cr3t-value"])
    assert m.mask("token=s3cr3t-value; again s3cr3t-value.") == "token=***; again ***."


def test_empty_masker_returns_text_unchanged() -> None:
    m = Masker.empty()
    text = "nothing secret here " * 10
    assert not m
    assert m.mask(text) is text
    data = {"a": ["b"]}
    assert m.mask_data(data) is data


def test_short_and_empty_values_are_not_masked() -> None:
    m = Masker(["", "ab", "  x  "])
    assert not m
    assert m.mask("ab x") == "ab x"


def test_value_with_surrounding_whitespace_is_masked_stripped_too() -> None:
    m = Masker(["letmein\n"])
    assert m.mask("password: letmein") == "password: ***"


def test_json_escaped_secret_is_masked() -> None:
    secret = 'pa"ss\\word/é'
    m = Masker([secret])
    for dumped in (json.dumps({"p": secret}), json.dumps({"p": secret}, ensure_ascii=False)):
        masked = m.mask(dumped)
        assert masked == '{"p": "***"}', masked


def test_base64_variants_are_masked() -> None:
    secret = "hunter2-is-my-password?"
    m = Masker([secret])
    raw = secret.encode()
    for encoded in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert m.mask(f"value: {encoded} end") == "value: *** end"


def test_base64_of_secret_embedded_in_other_data_is_masked() -> None:
    secret = "correct-horse-battery"
    m = Masker([secret])
    for user in ("u", "us", "usr"):  # the three byte alignments
        header = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        masked = m.mask(header)
        assert MASK in masked
        # What is left is too short to recover the secret from.
        leftover = masked.removeprefix("Basic ").replace(MASK, "")
        assert len(leftover) <= 12, masked


def test_url_encoded_variants_are_masked() -> None:
    secret = "a b/c&d=e+f"
    m = Masker([secret])
    for encoded in (quote(secret), quote(secret, safe=""), quote_plus(secret)):
        assert m.mask(f"https://x/?q={encoded}&z=1") == "https://x/?q=***&z=1"
    assert m.mask(urlencode({"token": secret})) == "token=***"


def test_hex_encoding_is_masked() -> None:
    m = Masker(["abcdef"])
    assert m.mask("hex 616263646566 HEX 616263646566".upper()) == "HEX *** HEX ***"


def test_multiline_secret_lines_are_masked_one_by_one() -> None:
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----\n"
    m = Masker([key])
    assert m.mask(key) == MASK
    assert "MIIB" not in m.mask("line: MIIBOgIBAAJBAKj34GkxFhD9")


def test_mask_data_walks_keys_values_and_containers() -> None:
    m = Masker(["topsecret"])
    data = {
        "topsecret": "value topsecret",
        "list": ["topsecret", 1, None, True, {"k": "x-topsecret-y"}],
        "tuple": ("topsecret",),
        3: 4.5,
    }
    original = json.dumps(data, default=list)
    assert m.mask_data(data) == {
        "***": "value ***",
        "list": ["***", 1, None, True, {"k": "x-***-y"}],
        "tuple": ("***",),
        3: 4.5,
    }
    assert json.dumps(data, default=list) == original  # not modified in place


def test_longest_secret_wins_when_secrets_overlap() -> None:
    m = Masker(["abc", "abcdef"])
    assert m.mask("xabcdefx") == "x***x"


def test_with_secrets_and_repr_never_shows_values() -> None:
    m = Masker(["first-secret"]).with_secrets(["second-secret"])
    assert m.mask("first-secret second-secret") == "*** ***"
    assert "first-secret" not in repr(m)
    assert "second-secret" not in repr(m)


def test_regex_metacharacters_in_secrets_are_literal() -> None:
    m = Masker(["a.b*c(d)"])
    assert m.mask("a.b*c(d) aXbbbc(d)") == "*** aXbbbc(d)"


@given(
    secret=st.text(
        alphabet=st.characters(exclude_characters="*", exclude_categories=["Cs"]),
        min_size=3,
        max_size=20,
    ).filter(lambda s: len(s.strip()) >= 3),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_secret_never_survives_masking(secret: str, before: str, after: str) -> None:
    m = Masker([secret])
    text = before + secret + after
    assert secret not in m.mask(text)
    encoded = json.dumps(text)
    assert json.dumps(secret)[1:-1] not in m.mask(encoded)


# ------------------------------------------------- secrets of any type (issue 15, item 2)


def test_an_integer_secret_is_masked_in_text_and_in_data() -> None:
    m = Masker([987654])
    assert m.mask("pin=987654 and 9876543") == "pin=*** and ***3"
    assert m.mask_data({"pin": 987654, "other": 12, "float": 987654.0}) == {
        "pin": MASK,
        "other": 12,
        "float": MASK,
    }


def test_booleans_and_short_numbers_are_not_secrets() -> None:
    m = Masker([True, 42, None])
    assert not m
    assert m.mask_data({"a": True, "b": 42}) == {"a": True, "b": 42}


def test_list_and_mapping_secrets_are_masked_by_their_leaves() -> None:
    m = Masker([["alpha-key", 123456], {"user": "bravo-key"}])
    assert m.mask("alpha-key bravo-key 123456") == "*** *** ***"
    assert m.mask_data([123456, "x"]) == [MASK, "x"]


def test_a_secret_taken_apart_into_characters_is_masked() -> None:
    m = Masker(["hunter2xyz"])
    assert m.mask_data(list("hunter2xyz")) == [MASK] * 10
    assert m.mask_data(["a", *"hunter2xyz", "b"]) == ["a", *[MASK] * 10, "b"]
    assert m.mask_data(["h", "u"]) == ["h", "u"]  # a prefix alone is not the secret


def test_a_secret_joined_with_a_separator_is_masked() -> None:
    m = Masker(["hunter2xyz"])
    for text in (
        "h-u-n-t-e-r-2-x-y-z",
        "h, u, n, t, e, r, 2, x, y, z",
        json.dumps(list("hunter2xyz")),
    ):
        assert "h" not in m.mask(text).replace("***", ""), (text, m.mask(text))
    # A different separator between two characters breaks the pattern: not the secret.
    assert m.mask("h-u,n-t-e-r-2-x-y-z") == "h-u,n-t-e-r-2-x-y-z"


def test_with_secrets_keeps_non_string_secrets() -> None:
    m = Masker([987654]).with_secrets(["another-one"])
    assert m.mask_data({"a": 987654, "b": "another-one"}) == {"a": MASK, "b": MASK}
