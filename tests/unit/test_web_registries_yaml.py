"""The Nodes page's registries textarea (web/registries_yaml.py): a profile's registries
written as one writes them by hand and read back the same; YAML errors and the service's
fields traced to their line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.registry import pki

from pullkeeper.core.nodeconfig.profile import parse, registry_doc
from pullkeeper.web.registries_yaml import EXAMPLE, RegistriesError, dump, line_of, load


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    issued = pki.certificate_authority(tmp_path_factory.mktemp("ca") / "ca", "Form CA")
    return Path(issued.cert_file).read_text()


def test_saved_registries_come_back_the_same_with_the_ca_as_a_block(ca_pem: str) -> None:
    given: list[Any] = [
        {"host": "registry.corp.example:5000", "ca": ca_pem},
        {"host": "lab.corp.example", "insecure": "http"},
        {
            "host": "docker.io",
            "mirrors": [
                "https://mirror.corp.example",
                {"url": "https://art.corp.example/v2/hub", "override_path": True},
            ],
        },
    ]
    # What the service keeps: the registries normalized as a profile file's.
    saved = [registry_doc(r) for r in parse({"registries": given}).registries]
    text = dump(saved)
    assert load(text) == saved
    # The PEM is a literal block, one certificate line a line, as typed by hand.
    assert "ca: |" in text
    assert "\n    -----BEGIN CERTIFICATE-----\n" in text
    assert dump([]) == "" and load("") == [] and load("  \n") == []


def test_the_example_is_a_profile_files_registries() -> None:
    example = load(EXAMPLE.replace("    ...\n", ""))
    assert [r["host"] for r in example] == [
        "registry.corp.example:5000",
        "lab.corp.example",
        "docker.io",
    ]
    # Its CA is a placeholder; the rest is what a profile file may hold.
    without_ca = [{k: v for k, v in r.items() if k != "ca"} for r in example]
    assert [r.host for r in parse({"registries": without_ca}).registries] == [
        "registry.corp.example:5000",
        "lab.corp.example",
        "docker.io",
    ]


def test_a_profile_files_mapping_gives_its_registries_and_no_logins() -> None:
    assert load("registries:\n  - host: quay.io\n") == [{"host": "quay.io"}]
    with pytest.raises(RegistriesError, match=r"^logins: .*credentials of cluster scope"):
        load("registries: []\nlogins: {quay.io: {username: u, password: p}}\n")
    with pytest.raises(RegistriesError, match=r"^node_selector: only the registries"):
        load("registries: []\nnode_selector: {pool: gpu}\n")
    with pytest.raises(RegistriesError, match="is a list of registries"):
        load("host: quay.io\n")


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("- host: quay.io\n- host: a.example\n  insecure: http\n   mirrors: []\n", 4, 11),
        ("- host: quay.io\n  mirrors: [https://m.example\n", 3, 1),
        ('- host: "quay.io\n', 2, 1),
    ],
    ids=["bad-indent", "unclosed-list", "unclosed-quote"],
)
def test_a_yaml_syntax_error_names_its_line(text: str, line: int, column: int) -> None:
    with pytest.raises(RegistriesError) as raised:
        load(text)
    message = str(raised.value)
    assert message.startswith(f"line {line}, column {column}: "), message
    assert message.endswith("fix the YAML there")


TEXT = """\
# the lab's registries
- host: quay.io
- host: registry.corp.example
  ca: |
    not a certificate
  mirrors:
    - https://m1.example
    - https://m2.example
"""


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ("registries[0].host", 2),
        ("registries[1]", 3),
        ("registries[1].ca", 4),
        ("registries[1].mirrors[1]", 8),
        ("registries[1].mirrors[1].url", 8),  # a plain URL: its item's line
        ("registries[1].insecure", 3),  # not there: the registry's line
        ("registries[5].host", 2),  # no such registry: the list's line
    ],
)
def test_a_service_field_is_traced_to_its_line(field: str, line: int) -> None:
    assert line_of(TEXT, field) == line
    assert line_of(
        "registries:\n" + "".join("  " + ln + "\n" for ln in TEXT.splitlines()), field
    ) == (line + 1)


def test_nesting_too_deep_for_the_parser_is_an_error_not_a_crash() -> None:
    deep = "- " * 3000 + "x\n"
    with pytest.raises(RegistriesError, match="nested too deeply"):
        load(deep)
    assert line_of(deep, "registries[0]") is None


def test_no_line_without_yaml_or_for_other_fields() -> None:
    assert line_of("- host: [", "registries[0].host") is None
    assert line_of("", "registries[0]") is None
    assert line_of(TEXT, "node_selector.pool") is None
