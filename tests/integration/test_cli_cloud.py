"""`pullkeeper credential` with cloud identities, the real executable against a real
`pullkeeper serve` whose ECR exchanges go to AWS on loopback (tests/cloud/aws.py, moto):
an access key's secret from stdin, what show and list print of the identity and its token,
a refused create, and no secret in any output (Cli checks every one)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cloud import aws
from tests.cloud.aws import Aws

from .test_cli_edit import EDITOR_SCRIPT
from .test_cli_server import Cli, User, start_server

pytestmark = pytest.mark.integration

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
KEY_ID = "AKIAPULLER0000000001"
SECRET_KEY = "puller-secret-access-key-0123456789"  # throwaway; moto takes any
UNKNOWN_KEY_ID = "AKIAUNKNOWN000000000"


@dataclass
class Cloudy:
    cli: Cli
    admin: User
    aws: Aws


@pytest.fixture(scope="module")
def cloudy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloudy]:
    """A server sending its ECR exchanges to the stand-in, its refresher off (the tests
    read the first token's times), and the admin logged in with a cluster."""
    with aws.serve(limit=1800) as stand_in:
        server = start_server(
            tmp_path_factory.mktemp("pkcloud"),
            settings={
                "PULLKEEPER_CLOUD_AWS_ENDPOINT": stand_in.url,
                "PULLKEEPER_TOKEN_REFRESH": "false",
            },
        )
        try:
            cli = Cli(server, tmp_path_factory.mktemp("pkcloudusers"))
            cli.secrets |= {SECRET_KEY, server.admin_password}
            admin = cli.user("admin")
            cli.login(admin, server.admin_password)
            cli.ok(admin, "cluster", "create", "prod")
            yield Cloudy(cli, admin, stand_in)
        finally:
            server.stop()


def create_ecr(name: str, *extra: str) -> list[str]:
    return [
        "credential",
        "create",
        name,
        "--cluster",
        "prod",
        "--scope",
        "cluster",
        "--provider",
        "ecr",
        "--registry",
        ECR,
        *extra,
    ]


def test_an_ecr_credential_made_from_an_access_key_on_stdin(cloudy: Cloudy) -> None:
    c = cloudy
    made = c.cli.ok(
        c.admin,
        *create_ecr("ecr-key", "--aws-access-key-id", KEY_ID, "--aws-secret-access-key-stdin"),
        stdin=SECRET_KEY + "\n",
    )
    assert re.fullmatch(r"credential ecr-key created \(id [0-9a-f]{32}, active\)\n", made.stdout)
    # The token ECR issued is the credential's password: never printed either.
    c.cli.secrets |= set(c.aws.issued)

    shown = c.cli.ok(c.admin, "credential", "show", "ecr-key").stdout
    lines = dict(re.findall(r"^([a-z ]+):\s+(.*)$", shown, re.MULTILINE))
    assert lines["username"] == "AWS"
    assert lines["identity"] == f"aws (access_key_id {KEY_ID})"
    assert lines["token"] == "valid"
    # Absolute, then relative: ECR's tokens live 12 hours, refreshed before half of it.
    assert re.fullmatch(r"\S+Z \(in 11h 5\dm\)", lines["expires"]), shown
    assert re.fullmatch(r"\S+Z \((under a minute|\dm) ago\)", lines["last refresh"]), shown
    assert re.fullmatch(r"\S+Z \(in [45]h \d+m\)", lines["next refresh"]), shown
    assert lines["failures"] == "0" and lines["last error"] == "-"

    # -o json passes the API's dict unchanged.
    as_json = c.cli.json(c.admin, "credential", "show", "ecr-key")
    assert as_json["identity"]["kind"] == "aws"
    assert as_json["identity"]["access_key_id"] == KEY_ID
    assert set(as_json["identity"]["token"]) == {
        "state",
        "issued_at",
        "expires_at",
        "refresh_at",
        "failures",
        "last_error",
    }


def test_list_has_a_token_column_for_cloud_credentials_only(cloudy: Cloudy) -> None:
    c = cloudy
    c.cli.secrets.add("static-password-9")
    c.cli.ok(
        c.admin,
        *create_ecr("ecr-static", "--username", "AWS", "--password-stdin"),
        stdin="static-password-9",
    )
    c.cli.ok(
        c.admin,
        *create_ecr("ecr-chain", "--aws-access-key-id", KEY_ID, "--aws-secret-access-key-stdin"),
        stdin=SECRET_KEY,
    )
    c.cli.secrets |= set(c.aws.issued)
    table = c.cli.ok(c.admin, "credential", "list", "--name", "ecr-").stdout.splitlines()
    assert table[0].split()[-1] == "TOKEN"
    rows = {line.split()[1]: line for line in table[1:]}
    assert rows["ecr-chain"].endswith("token valid 11h")
    assert rows["ecr-static"].rstrip().endswith("-")
    assert "token" not in rows["ecr-static"]
    listed = c.cli.json(c.admin, "credential", "list", "--name", "ecr-")["items"]
    assert {i["name"]: bool(i["identity"]) for i in listed}["ecr-static"] is False
    # Without a cloud credential on the page, no TOKEN column.
    only_static = c.cli.ok(c.admin, "credential", "list", "--name", "ecr-static").stdout
    assert "TOKEN" not in only_static


def test_a_create_the_cloud_refuses_says_why_and_stores_nothing(cloudy: Cloudy) -> None:
    c = cloudy
    args = create_ecr(
        "ecr-refused", "--aws-access-key-id", UNKNOWN_KEY_ID, "--aws-secret-access-key-stdin"
    )
    with c.aws.enforcing_iam():
        line = c.cli.fails(c.admin, *args, stdin=SECRET_KEY)
    assert line.startswith("error: no registry login could be made from the aws identity (invalid)")
    assert UNKNOWN_KEY_ID in line and line.endswith("(field: identity)")
    assert c.cli.json(c.admin, "credential", "list", "--name", "ecr-refused")["items"] == []


def test_identity_options_that_do_not_make_one_identity_are_refused(
    cloudy: Cloudy, tmp_path: Path
) -> None:
    c = cloudy
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account"}))
    refusals = {
        "password or with a cloud identity, not both: drop --password-stdin": (
            "--aws-access-key-id",
            KEY_ID,
            "--password-stdin",
        ),
        "not both: drop --username": ("--aws-default-chain", "--username", "AWS"),
        "give one cloud's identity options, not aws and gcp's together": (
            "--aws-default-chain",
            "--gcp-key-file",
            str(key),
        ),
        "needs --aws-access-key-id": ("--aws-role-arn", "arn:aws:iam::123456789012:role/r"),
        "give either --aws-access-key-id (its secret on stdin) or --aws-default-chain": (
            "--aws-access-key-id",
            KEY_ID,
            "--aws-default-chain",
        ),
        "an Azure identity needs --azure-auth": ("--azure-tenant", "contoso.onmicrosoft.com"),
        # No terminal to ask the secret on.
        "no terminal to ask for the secret access key: pipe it in with "
        "--aws-secret-access-key-stdin": ("--aws-access-key-id", KEY_ID),
    }
    for words, extra in refusals.items():
        line = c.cli.fails(c.admin, *create_ecr("ecr-bad", *extra), stdin=SECRET_KEY)
        assert words in line, line
    # Checked by the server before anything is sent to AWS: named by its field.
    line = c.cli.fails(
        c.admin,
        *create_ecr("ecr-bad", "--aws-default-chain", "--aws-role-arn", "arn:aws:iam::1:role/x"),
    )
    assert "12-digit" in line and line.endswith("(field: identity.role_arn)")
    assert c.cli.json(c.admin, "credential", "list", "--name", "ecr-bad")["items"] == []


def test_edit_gives_a_new_identity_whole(cloudy: Cloudy) -> None:
    c = cloudy
    c.cli.ok(
        c.admin,
        *create_ecr("ecr-edit", "--aws-access-key-id", KEY_ID, "--aws-secret-access-key-stdin"),
        stdin=SECRET_KEY,
    )
    before = len(c.aws.issued)
    other = "AKIAPULLER0000000002"
    edited = c.cli.ok(
        c.admin,
        "credential",
        "edit",
        "ecr-edit",
        "--aws-access-key-id",
        other,
        "--aws-secret-access-key-stdin",
        stdin=SECRET_KEY,
    )
    c.cli.secrets |= set(c.aws.issued)
    assert edited.stdout == "credential ecr-edit updated; new identity, first token made\n"
    assert len(c.aws.issued) == before + 1
    shown = c.cli.json(c.admin, "credential", "show", "ecr-edit")
    assert shown["identity"]["access_key_id"] == other
    # A new email needs no password: the login is the identity's.
    c.cli.ok(c.admin, "credential", "edit", "ecr-edit", "--email", "ops@example.com")
    line = c.cli.fails(
        c.admin, "credential", "edit", "ecr-edit", "--password-stdin", stdin="pw-static-Zq81xv"
    )
    assert "logs in with a cloud identity" in line


def test_an_email_edited_in_the_editor_asks_no_password(cloudy: Cloudy, tmp_path: Path) -> None:
    """The editor offers no user name for a cloud credential (its tokens make the login) and
    asks no password for a new email."""
    c = cloudy
    c.cli.ok(
        c.admin,
        *create_ecr("ecr-ed", "--aws-access-key-id", KEY_ID, "--aws-secret-access-key-stdin"),
        stdin=SECRET_KEY + "\n",
    )
    c.cli.secrets |= set(c.aws.issued)
    script, seen = tmp_path / "editor.py", tmp_path / "seen.yaml"
    script.write_text(EDITOR_SCRIPT, encoding="utf-8")
    plan = {"seen": str(seen), "replace": [("email: ''", "email: ops@example.com")]}
    editor = {"EDITOR": f"{sys.executable} {script}", "EDIT_PLAN": json.dumps(plan)}
    c.cli.ok(c.admin, "credential", "edit", "ecr-ed", env=editor)
    assert "username" not in seen.read_text(encoding="utf-8")
    assert c.cli.json(c.admin, "credential", "show", "ecr-ed")["email"] == "ops@example.com"
