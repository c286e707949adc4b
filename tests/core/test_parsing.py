"""The strict request parsers: exact grammars, bounded work, and only ParseError for bad input."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipedrive_app.core.parsing import (
    BIGINT_MAX,
    ParseError,
    basic_credentials_parse,
    bearer_token_parse,
    id_list_parse,
    id_or_none,
    id_parse,
    json_body_parse,
    json_clean,
    json_object_parse,
    text_clean,
    uuid_parse,
)

FUZZ = hypothesis_settings(max_examples=300, deadline=None)


# ---------------------------------------------------------------------------------------------- ids


@pytest.mark.parametrize("value", [1, "1", "42", "0042", str(BIGINT_MAX), BIGINT_MAX])
def test_id_accepts_ascii_digits_and_ints(value: object) -> None:
    assert id_parse(value=value) == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "value",
    [
        "²",  # str.isdigit() says yes, int() says no
        "٣",  # Arabic-Indic three: isdigit() and int() both accept it
        "１２",  # fullwidth digits
        "9" * 5000,  # int() would raise (digit limit) or build a huge number
        "9" * 20,
        str(BIGINT_MAX + 1),
        "1\n",  # what `^\d+$` accepts
        " 1",
        "+1",
        "-1",
        "1_000",
        "1.0",
        "",
        "0",
        0,
        -5,
        True,
        1.0,
        None,
        [1],
        b"1",
    ],
)
def test_id_refuses_everything_else_with_parse_error(value: object) -> None:
    with pytest.raises(ParseError):
        id_parse(value=value)
    assert id_or_none(value=value) is None


def test_id_zero_only_when_allowed() -> None:
    assert id_parse(value="0", allow_zero=True) == 0
    with pytest.raises(ParseError, match="out of range"):
        id_parse(value=11, maximum=10)


@FUZZ
@given(st.one_of(st.text(), st.integers(), st.floats(), st.booleans(), st.none(), st.binary()))
def test_id_parse_raises_only_parse_error(value: object) -> None:
    try:
        number = id_parse(value=value)
    except ParseError:
        return
    assert isinstance(number, int) and 0 < number <= BIGINT_MAX


@FUZZ
@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
def test_id_round_trips_ascii_digits(text: str) -> None:
    number = int(text)
    if number == 0 or number > BIGINT_MAX:
        assert id_or_none(value=text) is None
    else:
        assert id_parse(value=text) == number


def test_id_list() -> None:
    assert id_list_parse(value="3,1,3,2") == [3, 1, 2]
    assert id_list_parse(value="") == []
    assert id_list_parse(value=[1, "2"]) == [1, 2]
    for bad in ["1,,2", "1,²", "1, 2", "1,2\n", ",".join(["1"] * 101), "9" * 5000, {"a": 1}, 7]:
        with pytest.raises(ParseError):
            id_list_parse(value=bad)


@FUZZ
@given(st.one_of(st.text(), st.lists(st.one_of(st.text(), st.integers()), max_size=120)))
def test_id_list_raises_only_parse_error(value: object) -> None:
    try:
        ids = id_list_parse(value=value)
    except ParseError:
        return
    assert len(ids) <= 100 and all(0 < i <= BIGINT_MAX for i in ids)


def test_uuid() -> None:
    value = uuid.uuid4()
    assert uuid_parse(value=str(value)) == value
    assert uuid_parse(value=str(value).upper()) == value
    for bad in [value.hex, f"{{{value}}}", f"urn:uuid:{value}", f"{value}\n", "", None, 5, f" {value}"]:
        with pytest.raises(ParseError):
            uuid_parse(value=bad)


# -------------------------------------------------------------------------------------- credentials


def _basic(raw: bytes, scheme: str = "Basic") -> str:
    return f"{scheme} {base64.b64encode(raw).decode()}"


def test_basic_credentials() -> None:
    assert basic_credentials_parse(header=_basic(b"user:pa:ss")) == ("user", "pa:ss")
    assert basic_credentials_parse(header=_basic(b"user:", scheme="basic")) == ("user", "")
    assert basic_credentials_parse(header=_basic("ü:é".encode())) == ("ü", "é")
    for bad in [
        None,
        "",
        "Basic",
        "Basic ",
        _basic(b"nocolon"),
        _basic(b"\xff\xfe:x"),  # not UTF-8
        _basic(b"user:pass\n"),  # control character
        _basic(b"us\x00er:pass"),
        _basic(b"user:pass") + "\n",  # trailing newline after the base64
        _basic(b"user:pass", scheme="Bearer"),
        "Basic !!!!",
        "Basic " + "A" * 5000,
    ]:
        with pytest.raises(ParseError):
            basic_credentials_parse(header=bad)


@FUZZ
@given(st.text(max_size=300))
def test_basic_credentials_raise_only_parse_error(header: str) -> None:
    for candidate in (header, "Basic " + header, _basic(header.encode("utf-8", "surrogatepass"))):
        with contextlib.suppress(ParseError):
            basic_credentials_parse(header=candidate)


def test_bearer_token() -> None:
    assert bearer_token_parse(header="Bearer abc.def-ghi_~+/==") == "abc.def-ghi_~+/=="
    assert bearer_token_parse(header="bearer x") == "x"
    for bad in [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a\n",
        "Basic abc",
        "Bearer é",
        "Bearer " + "a" * 9000,
    ]:
        with pytest.raises(ParseError):
            bearer_token_parse(header=bad)


@FUZZ
@given(st.text(max_size=200))
def test_bearer_raises_only_parse_error(token: str) -> None:
    try:
        parsed = bearer_token_parse(header="Bearer " + token)
    except ParseError:
        return
    assert parsed == token and "\n" not in token


# --------------------------------------------------------------------------------------------- JSON


def test_json_body_basic() -> None:
    assert json_body_parse(body=b'{"a": [1, "x"]}') == {"a": [1, "x"]}
    assert json_object_parse(body=b"", allow_empty=True) == {}
    assert json_body_parse(body=b'"[[[[[[["', max_depth=2) == "[[[[[[["  # brackets inside strings don't count
    assert json_body_parse(body=b'["\\"[[[["]', max_depth=1) == ['"[[[[']


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 50_000 + b"]" * 50_000, "deeper"),
        (b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "deeper"),
        (b"[" * 50_000, "deeper"),  # unbalanced, still refused before json.loads
        (b"9" * 5000, "not valid JSON"),  # Python's int digit limit
        (b"[NaN]", "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"\xff", "not valid JSON"),
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b" " * 300_000, "larger"),
    ],
)
def test_json_body_refusals(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        json_body_parse(body=body)


def test_json_depth_limit_is_exact() -> None:
    assert json_body_parse(body=b"[" * 32 + b"]" * 32) is not None
    with pytest.raises(ParseError):
        json_body_parse(body=b"[" * 33 + b"]" * 33)


def test_json_object_requires_object() -> None:
    with pytest.raises(ParseError, match="object"):
        json_object_parse(body=b"[1]")


@FUZZ
@given(st.binary(max_size=400))
def test_json_body_raises_only_parse_error_on_bytes(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        json_body_parse(body=body)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


@FUZZ
@given(_json_values)
def test_json_body_round_trips_valid_documents(value: object) -> None:
    raw = json.dumps(value).encode()
    try:
        parsed = json_body_parse(body=raw)
    except ParseError as exc:
        assert "deeper" in str(exc)
        return
    assert parsed == value


# --------------------------------------------------------------------------------------------- text


def test_text_clean() -> None:
    assert text_clean("plain") == "plain"
    assert text_clean("a\x00b") == "ab"
    assert text_clean("a\ud800b") == "a\ufffdb"
    assert text_clean("\x00\x00") == ""


def test_json_clean_strings_and_keys_at_any_depth() -> None:
    parsed = json_body_parse(body=b'{"t\\u0000":"x\\u0000y","l":[{"z":"\\ud83d"}],"n":1}')
    assert json_clean(parsed) == {"t": "xy", "l": [{"z": "\ufffd"}], "n": 1}
    deep: list[object] = []
    cursor = deep
    for _ in range(200):
        nxt: list[object] = ["\x00"]
        cursor.append(nxt)
        cursor = nxt
    cleaned = json_clean(deep)
    json.dumps(cleaned)  # no recursion problem at 200
    assert "\\u0000" not in json.dumps(cleaned)
    with pytest.raises(ParseError):
        json_clean(deep, max_depth=50)


@FUZZ
@given(_json_values)
def test_json_clean_output_is_storable(value: object) -> None:
    cleaned = json_clean(value)
    encoded = json.dumps(cleaned, ensure_ascii=False)
    assert "\x00" not in encoded
    encoded.encode("utf-8")  # no lone surrogate left
