"""Go standard-library behaviours reproduced in core/go, checked against Go's own cases."""

from __future__ import annotations

import pytest

from pullkeeper.core.go import base64 as gob64
from pullkeeper.core.go import duration as goduration
from pullkeeper.core.go import glob
from pullkeeper.core.go import json as gojson
from pullkeeper.core.go import url as gourl

# path/filepath.Match: (pattern, name, matched, bad pattern)
MATCH_CASES = [
    ("abc", "abc", True, False),
    ("*", "abc", True, False),
    ("*c", "abc", True, False),
    ("a*", "a", True, False),
    ("a*", "abc", True, False),
    ("a*", "ab/c", False, False),
    ("a*/b", "abc/b", True, False),
    ("a*/b", "a/c/b", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False, False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True, False),
    ("a*b?c*x", "abxbbxdbxebxczzy", False, False),
    ("ab[c]", "abc", True, False),
    ("ab[b-d]", "abc", True, False),
    ("ab[e-g]", "abc", False, False),
    ("ab[^c]", "abc", False, False),
    ("ab[^b-d]", "abc", False, False),
    ("ab[^e-g]", "abc", True, False),
    ("a\\*b", "a*b", True, False),
    ("a\\*b", "ab", False, False),
    ("a?b", "a\u263ab", True, False),
    ("a[^a]b", "a\u263ab", True, False),
    ("a???b", "a\u263ab", False, False),
    ("[a-\u03b6]*", "\u03b1", True, False),
    ("*[a-\u03b6]", "A", False, False),
    ("a?b", "a/b", False, False),
    ("a*b", "a/b", False, False),
    ("[\\]a]", "]", True, False),
    ("[\\-]", "-", True, False),
    ("[x\\-]", "x", True, False),
    ("[x\\-]", "-", True, False),
    ("[x\\-]", "z", False, False),
    ("[\\-x]", "-", True, False),
    ("[\\-x]", "a", False, False),
    ("[]a]", "]", False, True),
    ("[-]", "-", False, True),
    ("[x-]", "x", False, True),
    ("[-x]", "x", False, True),
    ("\\", "a", False, True),
    ("[a-b-c]", "a", False, True),
    ("[", "a", False, True),
    ("[^", "a", False, True),
    ("[^bc", "a", False, True),
    ("a[", "a", False, True),
    ("a[", "ab", False, True),
    ("a[", "x", False, True),
    ("a/b[", "x", False, True),
    ("*x", "xxx", True, False),
    ("", "", True, False),
    ("", "a", False, False),
]


@pytest.mark.parametrize(("pattern", "name", "matched", "bad"), MATCH_CASES)
def test_filepath_match(pattern: str, name: str, matched: bool, bad: bool) -> None:
    if bad:
        with pytest.raises(glob.BadPattern):
            glob.match(pattern, name)
    else:
        assert glob.match(pattern, name) is matched


@pytest.mark.parametrize(
    ("raw", "host", "path"),
    [
        ("https://quay.io", "quay.io", ""),
        ("https://quay.io/", "quay.io", "/"),
        ("https://quay.io:443/v2/x", "quay.io:443", "/v2/x"),
        ("https://user:pw@quay.io/x", "quay.io", "/x"),
        ("https://[::1]:5000/x", "[::1]:5000", "/x"),
        ("https://[fe80::1%25en0]/", "[fe80::1%en0]", "/"),
        ("https://[fe80::1%25%65%6e%301-._~]:8080/", "[fe80::1%en01-._~]:8080", "/"),
        ("https://quay.io/a%20b", "quay.io", "/a b"),
        ("https://quay.io/a?b/c", "quay.io", "/a"),
        ("https://quay.io/a?", "quay.io", "/a"),
        ("https://quay.io/a#b", "quay.io", "/a"),
        ("https://h%C3%A9.io/", "h\u00e9.io", "/"),
        ("https://h\u00e9.io/", "h\u00e9.io", "/"),
        ("https://Quay.IO/X", "Quay.IO", "/X"),
        ("https://quay.io:/x", "quay.io:", "/x"),
    ],
)
def test_url_parse(raw: str, host: str, path: str) -> None:
    u = gourl.parse(raw)
    assert (u.host, u.path) == (host, path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("https://[::1]:namedport", 'invalid port ":namedport" after host'),
        ("https://%41:8080/", 'invalid URL escape "%41"'),
        ("https://a b.com/", 'invalid character " " in host name'),
        ("https://a\\b.com/", 'invalid character "\\\\" in host name'),
        ("https://quay.io/%2\u00e9", 'invalid URL escape "%2\\xc3"'),
        ("https://quay.io/%zz", 'invalid URL escape "%zz"'),
        ("https://quay.io/%4", 'invalid URL escape "%4"'),
        ("https://quay.io/\x7f", "net/url: invalid control character in URL"),
        ("https://[::1/", "missing ']' in host"),
        ("https://a:b:c/", 'invalid port ":c" after host'),
        ("https://us er@quay.io/", "net/url: invalid userinfo"),
        ("https://quay.io/#%zz", 'invalid URL escape "%zz"'),
    ],
)
def test_url_parse_errors(raw: str, message: str) -> None:
    with pytest.raises(gourl.URLError) as e:
        gourl.parse(raw)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("hostport", "host", "port"),
    [
        ("localhost:http", "localhost", "http"),
        ("localhost:80", "localhost", "80"),
        ("[::1]:80", "::1", "80"),
        ("[fe80::1%lo0]:80", "fe80::1%lo0", "80"),
        (":80", "", "80"),
        ("localhost:", "localhost", ""),
        ("[]:80", "", "80"),
    ],
)
def test_split_host_port(hostport: str, host: str, port: str) -> None:
    assert gourl.split_host_port(hostport) == (host, port)


@pytest.mark.parametrize(
    ("hostport", "message"),
    [
        ("golang.org", "missing port in address"),
        ("[::1]", "missing port in address"),
        ("[::1]80", "missing port in address"),
        ("::1:80", "too many colons in address"),
        ("[::1]:80:80", "too many colons in address"),
        ("[foo:bar]baz:80", "missing port in address"),
        ("[foo]bar:baz]:80", "missing port in address"),
        ("[foo]:[bar]:80", "too many colons in address"),
        ("fo[o]:80", "unexpected '[' in address"),
        ("foo]:80", "unexpected ']' in address"),
        ("[::1:80", "missing ']' in address"),
    ],
)
def test_split_host_port_errors(hostport: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^" + message.replace("[", r"\[") + "$"):
        gourl.split_host_port(hostport)


# encoding/base64 TestDecodeCorrupt: input and the offset Go reports (-1: valid).
CORRUPT_CASES = [
    ("", -1),
    ("\n", -1),
    ("AAA=\n", -1),
    ("AAAA\n", -1),
    ("!!!!", 0),
    ("====", 0),
    ("x===", 1),
    ("=AAA", 0),
    ("A=AA", 1),
    ("AA=A", 2),
    ("AA==A", 4),
    ("AAA=AAAA", 4),
    ("AAAAA", 4),
    ("AAAAAA", 4),
    ("A=", 1),
    ("A==", 1),
    ("AA=", 3),
    ("AA==", -1),
    ("AAA=", -1),
    ("AAAA", -1),
    ("AAAAAA=", 7),
    ("YWJjZA=====", 8),
    ("A!\n", 1),
    ("A=\n", 1),
    ("YW\r\nJj", -1),
    ("YW\r\nJ", 2),
    ("YW\r\nJj\r\nZA==", -1),
]


@pytest.mark.parametrize(("data", "offset"), CORRUPT_CASES)
def test_std_decoding_errors_report_gos_offset(data: str, offset: int) -> None:
    if offset < 0:
        gob64.std_decode(data)
        return
    with pytest.raises(gob64.CorruptInput) as e:
        gob64.std_decode(data)
    assert e.value.offset == offset
    assert str(e.value) == f"illegal base64 data at input byte {offset}"


@pytest.mark.parametrize(
    ("data", "decoded"),
    [
        ("dTpw", b"u:p"),
        ("dTpwYQ", b"u:pa"),
        ("dTpwYWI", b"u:pab"),
        ("dTp\nwYQ", b"u:pa"),
        ("", b""),
    ],
)
def test_raw_std_decoding(data: str, decoded: bytes) -> None:
    assert gob64.raw_std_decode(data) == decoded


@pytest.mark.parametrize(("data", "offset"), [("A", 0), ("AA=", 2), ("dTpw=", 4), ("dT!w", 2)])
def test_raw_std_decoding_errors(data: str, offset: int) -> None:
    with pytest.raises(gob64.CorruptInput) as e:
        gob64.raw_std_decode(data)
    assert e.value.offset == offset


def test_std_decoding_accepts_nonzero_trailing_bits_like_go() -> None:
    # Go's StdEncoding is not Strict: "AB==" carries bits past the byte.
    assert gob64.std_decode("AB==") == b"\x00"
    assert gob64.std_decode("AAB=") == b"\x00\x00"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain", '"plain"'),
        ("<>&", '"\\u003c\\u003e\\u0026"'),
        ('"\\', '"\\"\\\\"'),
        ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
        ("\x7f", '"\x7f"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("\u00e9\U0001f600", '"\u00e9\U0001f600"'),
        ("\udc80", '"\\ufffd"'),
    ],
)
def test_json_string_encoding_is_gos(value: str, encoded: str) -> None:
    assert gojson.encode_string(value) == encoded


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("username", "USERNAME"),
        ("UserName", "USERNAME"),
        ("u\u017fername", "USERNAME"),
        ("\u212aey", "KEY"),
        ("em\u0131l", "EMIL"),
        ("\u0130d", "ID"),
        ("\u00e9", "\u00c9"),
    ],
)
def test_json_field_folding(name: str, folded: str) -> None:
    assert gojson.fold(name) == folded


def test_json_decoding_keeps_duplicates_and_order() -> None:
    doc = gojson.loads(b'{"b": 1, "a": 2, "b": 3}')
    assert list(doc) == [("b", 1), ("a", 2), ("b", 3)]


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "{", "[1,]", "'a'"])
def test_json_decoding_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(gojson.JSONSyntaxError):
        gojson.loads(text)


def test_json_decoding_replaces_invalid_utf8_per_byte() -> None:
    assert gojson.loads(b'"a\xe2\x82b"') == "a\ufffd\ufffdb"
    assert gojson.loads(b'"\\ud800x"') == "\ufffdx"
    assert gojson.loads(b'"\\ud83d\\ude00"') == "\U0001f600"


# time.Duration.String: (nanoseconds, string), Go's own table and the cache durations.
DURATION_STRINGS = [
    (0, "0s"),
    (1, "1ns"),
    (1100, "1.1\u00b5s"),
    (2_200_000, "2.2ms"),
    (3_300_000_000, "3.3s"),
    (4 * goduration.MINUTE + 5 * goduration.SECOND, "4m5s"),
    (4 * goduration.MINUTE + 5001 * goduration.MILLISECOND, "4m5.001s"),
    (5 * goduration.HOUR + 6 * goduration.MINUTE + 7001 * goduration.MILLISECOND, "5h6m7.001s"),
    (8 * goduration.MINUTE + 1, "8m0.000000001s"),
    ((1 << 63) - 1, "2562047h47m16.854775807s"),
    (-(1 << 63), "-2562047h47m16.854775808s"),
    (6 * goduration.HOUR, "6h0m0s"),
    (goduration.HOUR, "1h0m0s"),
    (90 * goduration.SECOND, "1m30s"),
    (5 * goduration.MINUTE, "5m0s"),
    (goduration.SECOND, "1s"),
    (999, "999ns"),
    (1000, "1\u00b5s"),
    (999_999, "999.999\u00b5s"),
    (goduration.SECOND - 1, "999.999999ms"),
    (-1500, "-1.5\u00b5s"),
]


@pytest.mark.parametrize(("ns", "text"), DURATION_STRINGS)
def test_duration_string_is_gos(ns: int, text: str) -> None:
    assert goduration.format(ns) == text


@pytest.mark.parametrize(("ns", "text"), DURATION_STRINGS)
def test_duration_strings_parse_back(ns: int, text: str) -> None:
    assert goduration.parse(text) == ns


# time.ParseDuration: Go's own table of valid durations, in nanoseconds.
@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("5s", 5 * goduration.SECOND),
        ("+5s", 5 * goduration.SECOND),
        ("-5s", -5 * goduration.SECOND),
        ("5.s", 5 * goduration.SECOND),
        (".5s", 500 * goduration.MILLISECOND),
        ("1.004s", goduration.SECOND + 4 * goduration.MILLISECOND),
        ("100.00100s", 100 * goduration.SECOND + goduration.MILLISECOND),
        ("11us", 11 * goduration.MICROSECOND),
        ("12\u00b5s", 12 * goduration.MICROSECOND),
        ("12\u03bcs", 12 * goduration.MICROSECOND),
        ("3h30m", 3 * goduration.HOUR + 30 * goduration.MINUTE),
        ("10.5s4m", 4 * goduration.MINUTE + 10 * goduration.SECOND + 500 * goduration.MILLISECOND),
        (
            "-2m3.4s",
            -(2 * goduration.MINUTE + 3 * goduration.SECOND + 400 * goduration.MILLISECOND),
        ),
        ("1h2m3s4ms5us6ns", 3_723_004_005_006),
        ("0.3333333333333333333h", 20 * goduration.MINUTE),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("9223372036854775.807us", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-2562047h47m16.854775808s", -(1 << 63)),
        # Digits past 2**63 in a fraction are dropped, and the rest scaled in float64.
        ("0.830103483285477580700h", 2_988_372_539_827),
        ("0." + "9" * 40 + "s", goduration.SECOND),
        # Go adds the parts in uint64, which wraps: two halves of 2**64 make 0.
        ("9223372036854775808ns9223372036854775808ns", 0),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert goduration.parse(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1h-1m", 'time: unknown unit "h-" in duration "1h-1m"'),
        (" 1s", 'time: invalid duration " 1s"'),
        ("\udc85\udc85", 'time: invalid duration "\\x85\\x85"'),
        ("hello \udcffff world", 'time: invalid duration "hello \\xffff world"'),
        ("\ufffd", 'time: invalid duration "\\xef\\xbf\\xbd"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("9223372036854776us", 'time: invalid duration "9223372036854776us"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("1" + "0" * 30 + "ns", 'time: invalid duration "1' + "0" * 30 + 'ns"'),
    ],
)
def test_parse_duration_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(goduration.InvalidDuration) as e:
        goduration.parse(text)
    assert str(e.value) == message
