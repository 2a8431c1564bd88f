"""A form's problems in words: every field's at once, without a pattern or a parser's jargon,
decided by the same rules as the use cases (core/names.py, core/providers.py)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from pullkeeper.core import providers
from pullkeeper.web import forms


class _Body(BaseModel):
    name: str = Field(max_length=8)
    replicas: int = Field(1, ge=1, le=50)
    token_hosts: list[str] = Field(default_factory=list, max_length=2)


def test_a_body_s_every_problem_in_words_one_per_field() -> None:
    errors: forms.Errors = {}
    body = forms.parse(
        _Body,
        {"name": "x" * 9, "replicas": "many", "token_hosts": ["a", "b", "c"]},
        errors,
        labels={"token_hosts": "token servers"},
    )
    assert body is None
    assert errors == {
        "name": "the name is too long: at most 8 characters",
        "replicas": "the replicas must be a whole number, such as 3",
        "token_hosts": "the token servers has too many entries: at most 2",
    }
    errors = {}
    forms.parse(_Body, {"replicas": 0}, errors)
    assert errors == {"name": "the name is required", "replicas": "the replicas must be at least 1"}


@pytest.mark.parametrize(
    ("value", "dots", "says"),
    [
        ("", True, "the name is required"),
        ("a" * 254, True, "the name is too long: at most 253 characters"),
        ("a" * 64, False, "the name is too long: at most 63 characters"),
        (
            "Team_A",
            True,
            'the name may have only lowercase letters, digits, "-" and ".", and must start '
            "and end with a letter or digit, such as team-a",
        ),
        (
            "team.a",
            False,
            'the name may have only lowercase letters, digits and "-", and must start and '
            "end with a letter or digit, such as team-a",
        ),
        ("team.a", True, None),
        ("-team", True, "the name may have only"),
    ],
)
def test_names_are_judged_by_the_kubernetes_rules_and_said_in_words(
    value: str, dots: bool, says: str | None
) -> None:
    found = forms.name_problem(value, "name", dots=dots, example="team-a")
    if says is None:
        assert found is None
    else:
        assert found is not None and found.startswith(says)
        assert "regex" not in found and "RFC" not in found


def test_check_all_keeps_each_field_s_first_problem() -> None:
    errors: forms.Errors = {"name": "said first"}
    forms.check_all(
        errors,
        {"name": lambda: "said second", "server": lambda: "no server", "email": lambda: None},
    )
    assert errors == {"name": "said first", "server": "no server"}


def test_a_provider_s_problems_all_at_once_first_as_check_raises() -> None:
    found = providers.problems("custom", "https://reg.example.com", "", "")
    assert [(p.field, str(p)) for p in found] == [
        (
            "server",
            "'https://reg.example.com' is not a registry address host[:port] without scheme",
        ),
        ("username", "a user name is required"),
        ("password", "a password or token is required"),
    ]
    with pytest.raises(providers.ProviderError) as raised:
        providers.check("custom", "https://reg.example.com", "", "")
    assert raised.value.field == "server"
    assert providers.problems("quay", None, "org+robot", "pw") == []
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert providers.check("ecr", ecr, "", "t") == (ecr, "AWS")  # its fixed user name
    assert [p.field for p in providers.problems("nope", None, "u", "p")] == ["provider"]
