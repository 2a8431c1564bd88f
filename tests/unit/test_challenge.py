"""WWW-Authenticate parsing: the forms registries and RFC 9110 use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pullkeeper.core.challenge import Challenge, ChallengeError, parse, parse_all, scopes


def test_docker_hub_bearer_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull",error="insufficient_scope"'
    )
    assert parse(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/nginx:pull",
                "error": "insufficient_scope",
            },
        )
    ]


def test_several_challenges_in_one_header_with_escapes_and_odd_spacing() -> None:
    header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    first, second = parse(header)
    assert (first.scheme, first.params) == (
        "newauth",
        {"realm": "apps", "type": "1", "title": 'Login to "apps"'},
    )
    assert (second.scheme, second.get("REALM")) == ("basic", "simple")
    spaced = parse('basic  REALM = "a,b" ,  , bearer realm=y')
    assert [(c.scheme, c.params) for c in spaced] == [
        ("basic", {"realm": "a,b"}),
        ("bearer", {"realm": "y"}),
    ]


def test_token68_and_bare_schemes() -> None:
    assert parse("Basic abc123==") == [Challenge("basic", {}, "abc123==")]
    assert [c.scheme for c in parse("Negotiate, Basic realm=x")] == ["negotiate", "basic"]
    assert parse("") == []


def test_several_scopes_in_one_challenge() -> None:
    (ch,) = parse('Bearer realm="r",scope="repository:a:pull repository:b:pull,push"')
    assert scopes(ch) == ["repository:a:pull", "repository:b:pull,push"]


@pytest.mark.parametrize("header", ['Bearer realm="r" service="s"', "=x", 'Bearer realm="r",@'])
def test_malformed_headers_raise_and_parse_all_skips_them(header: str) -> None:
    with pytest.raises(ChallengeError):
        parse(header)
    assert parse_all([header, 'Basic realm="ok"']) == [Challenge("basic", {"realm": "ok"})]


_values = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"), max_size=20)


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), _values, max_size=5))
def test_quoted_values_round_trip(params: dict[str, str]) -> None:
    def quote(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = "Bearer " + ", ".join(f"{k}={quote(v)}" for k, v in params.items())
    assert parse(header) == [Challenge("bearer", params)]
