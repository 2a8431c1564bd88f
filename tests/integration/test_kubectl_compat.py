"""`pullkeeper secret create docker-registry` against the real `kubectl create secret
docker-registry --dry-run=client`: the same Secret, the same payload bytes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pullkeeper.core.secret import KUBECTL_MESSAGES, MISSING_REGISTRY_FIELDS, NAME_REQUIRED

from .conftest import Result, assert_one_line_error, isolated_env, pk, require, run

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Case:
    id: str
    password: str
    username: str = "ci-bot"
    server: str | None = "registry.example.com"  # None: leave --docker-server out
    email: str | None = None  # None: leave --docker-email out
    namespace: str | None = None
    name: str = "regcred"

    def args(self) -> list[str]:
        args = [self.name]
        if self.server is not None:
            args.append(f"--docker-server={self.server}")
        args.append(f"--docker-username={self.username}")
        if self.email is not None:
            args.append(f"--docker-email={self.email}")
        if self.namespace is not None:
            args += ["-n", self.namespace]
        return args


CASES = [
    Case("server-with-port", "p4ss", server="registry.example.com:5000"),
    Case("password-with-colons", "pa:ss:word:"),
    Case("password-with-html-chars", "a&b<c>d&amp;"),
    Case(
        "unicode-and-control-chars",
        "pä\tss 日本🐳\x01\x1b[0m\x7f\u2028\u2029é",
        username="ünïcode-usér",
    ),
    Case("quote-backslash-spaces", ' p"a\\ss\\u0041 '),
    Case("inner-crlf", "line1\r\nline2"),
    Case("empty-email", "p4ss", email=""),
    Case("non-empty-email", "p4ss", email="dev+ci@example.com"),
    Case("default-server", "p4ss", server=None),
    Case("default-server-with-email", "p4ss", server=None, email="me@example.org"),
    Case("ip-server-with-port", "p4ss", server="10.1.2.3:5000"),
    Case("ip-server", "p4ss", server="192.168.0.10"),
    Case("url-server-verbatim", "p4ss", server="https://registry.example.com/v2/"),
    Case("namespace", "p4ss", namespace="team-a", email="x@y.z"),
    Case("dotted-name", "p4ss", name="pull.secret-1", namespace="default"),
]


@pytest.fixture(scope="module")
def kube_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require("kubectl", "the kubectl compatibility tests")
    home = tmp_path_factory.mktemp("kubectl-home")
    # A kubeconfig that does not exist: --dry-run=client must work with no cluster at all.
    return isolated_env(home, {"KUBECONFIG": str(home / "missing" / "kubeconfig")})


def kubectl(env: dict[str, str], case: Case, output: str) -> Result:
    result = run(
        [
            "kubectl",
            "create",
            "secret",
            "docker-registry",
            *case.args(),
            f"--docker-password={case.password}",
            "--dry-run=client",
            "-o",
            output,
        ],
        env=env,
    )
    assert result.returncode == 0, result.describe()
    return result


def pk_with_flag(env: dict[str, str], case: Case, output: str) -> Result:
    return pk(
        "secret",
        "create",
        "docker-registry",
        *case.args(),
        f"--docker-password={case.password}",
        "-o",
        output,
        env=env,
    )


def pk_with_stdin(env: dict[str, str], case: Case, output: str, stdin: str) -> Result:
    return pk(
        "secret",
        "create",
        "docker-registry",
        *case.args(),
        "--password-stdin",
        "-o",
        output,
        stdin=stdin,
        env=env,
    )


def payload(secret: dict[str, object]) -> bytes:
    data = secret["data"]
    assert isinstance(data, dict)
    assert list(data) == [".dockerconfigjson"]
    return base64.b64decode(data[".dockerconfigjson"], validate=True)


def assert_no_warning(result: Result) -> None:
    assert result.returncode == 0, result.describe()
    assert result.err == b"", f"--password-stdin must not warn\n{result.describe()}"


def assert_warned(result: Result, password: str) -> None:
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("warning:"), result.describe()
    assert "--password-stdin" in lines[0], result.describe()
    assert password not in result.stderr, "the warning must not repeat the password"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_json_matches_kubectl(kube_env: dict[str, str], case: Case) -> None:
    reference = kubectl(kube_env, case, "json")
    expected = json.loads(reference.out)
    expected_payload = payload(expected)

    flag = pk_with_flag(kube_env, case, "json")
    assert_warned(flag, case.password)
    stdin_exact = pk_with_stdin(kube_env, case, "json", case.password)
    assert_no_warning(stdin_exact)
    # As `docker login --password-stdin`: one trailing newline ends the password.
    stdin_line = pk_with_stdin(kube_env, case, "json", case.password + "\n")
    assert_no_warning(stdin_line)

    for result in (flag, stdin_exact, stdin_line):
        got = json.loads(result.out)
        assert got == expected, result.describe()
        assert payload(got) == expected_payload, result.describe()

    # And the payload is what kubectl wrote for this input, not just two equal mistakes.
    config = json.loads(expected_payload)
    server = case.server if case.server is not None else "https://index.docker.io/v1/"
    entry = config["auths"][server]
    assert entry["username"] == case.username
    assert entry["password"] == case.password
    assert base64.b64decode(entry["auth"]) == f"{case.username}:{case.password}".encode()
    assert ("email" in entry) == bool(case.email)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_json_output_is_byte_identical(kube_env: dict[str, str], case: Case) -> None:
    # The help text promises "the same Secret as kubectl ..., byte for byte".
    reference = kubectl(kube_env, case, "json")
    got = pk_with_stdin(kube_env, case, "json", case.password)
    assert got.returncode == 0, got.describe()
    assert got.out == reference.out, f"kubectl:\n{reference.stdout}\npullkeeper:\n{got.stdout}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_yaml_matches_kubectl(kube_env: dict[str, str], case: Case) -> None:
    reference = kubectl(kube_env, case, "yaml")
    expected = yaml.safe_load(reference.out)
    flag = pk_with_flag(kube_env, case, "yaml")
    assert_warned(flag, case.password)
    stdin = pk_with_stdin(kube_env, case, "yaml", case.password)
    assert_no_warning(stdin)
    for result in (flag, stdin):
        got = yaml.safe_load(result.out)
        assert got == expected, result.describe()
        assert payload(got) == payload(expected)
    # The YAML and JSON outputs describe the same object.
    as_json = json.loads(pk_with_stdin(kube_env, case, "json", case.password).out)
    assert yaml.safe_load(stdin.out) == as_json


def test_invalid_utf8_password_matches_kubectl(kube_env: dict[str, str]) -> None:
    """Bytes that are not UTF-8: Go writes U+FFFD in the JSON, raw bytes in `auth`."""
    password = b"p\xffw\xc3rd"
    reference = run(
        [
            b"kubectl",
            b"create",
            b"secret",
            b"docker-registry",
            b"regcred",
            b"--docker-username=u",
            b"--docker-password=" + password,
            b"--dry-run=client",
            b"-o",
            b"json",
        ],
        env=kube_env,
    )
    assert reference.returncode == 0, reference.describe()
    flag = pk(
        b"secret",
        b"create",
        b"docker-registry",
        b"regcred",
        b"--docker-username=u",
        b"--docker-password=" + password,
        b"-o",
        b"json",
        env=kube_env,
    )
    stdin = pk(
        "secret",
        "create",
        "docker-registry",
        "regcred",
        "--docker-username=u",
        "--password-stdin",
        "-o",
        "json",
        stdin=password,
        env=kube_env,
    )
    for result in (flag, stdin):
        assert result.returncode == 0, result.describe()
        assert result.out == reference.out, result.describe()
    assert (
        base64.b64decode(json.loads(reference.out)["data"][".dockerconfigjson"]).count(b"\\ufffd")
        == 2
    )


def test_invalid_utf8_password_on_stdin_in_a_strict_utf8_locale(
    kube_env: dict[str, str],
) -> None:
    """In a UTF-8 locale other than C.UTF-8 (say en_US.UTF-8) Python's stdin is strict.

    This machine has no such locale installed; PYTHONIOENCODING=utf-8:strict gives
    pullkeeper the very same stdin. kubectl takes these bytes; pullkeeper must either
    produce kubectl's Secret or refuse in one line, never crash with a traceback.
    """
    password = b"p\xffw\xc3rd"
    reference = run(
        [
            b"kubectl",
            b"create",
            b"secret",
            b"docker-registry",
            b"regcred",
            b"--docker-username=u",
            b"--docker-password=" + password,
            b"--dry-run=client",
            b"-o",
            b"json",
        ],
        env=kube_env,
    )
    assert reference.returncode == 0, reference.describe()
    result = pk(
        "secret",
        "create",
        "docker-registry",
        "regcred",
        "--docker-username=u",
        "--password-stdin",
        "-o",
        "json",
        stdin=password,
        env={**kube_env, "PYTHONIOENCODING": "utf-8:strict"},
    )
    assert "Traceback" not in result.stderr, result.describe()
    if result.returncode == 0:
        assert result.out == reference.out, result.describe()
    else:
        assert_one_line_error(result)


@dataclass(frozen=True)
class ErrorCase:
    id: str
    kubectl_args: tuple[str, ...]
    pk_args: tuple[str, ...]
    stdin: str | None  # None: standard input is not a terminal and sends nothing
    mentions: str
    # The kubectl message pullkeeper repeats word for word here (core/secret.py's), if any.
    mirrors: str | None = MISSING_REGISTRY_FIELDS
    name: str = "regcred"


ERROR_CASES = [
    ErrorCase(
        "no-password",
        ("--docker-username=u",),
        ("--docker-username=u",),
        None,
        "password",
        mirrors=None,  # pullkeeper says how to send it instead
    ),
    ErrorCase(
        "empty-password-on-stdin",
        ("--docker-username=u", "--docker-password="),
        ("--docker-username=u", "--password-stdin"),
        "",
        "password",
    ),
    ErrorCase(
        "only-a-newline-on-stdin",
        ("--docker-username=u", "--docker-password="),
        ("--docker-username=u", "--password-stdin"),
        "\n",
        "password",
    ),
    ErrorCase(
        "no-username",
        ("--docker-password=p",),
        ("--password-stdin",),
        "p",
        "username",
    ),
    ErrorCase(
        "empty-username",
        ("--docker-username=", "--docker-password=p"),
        ("--docker-username=", "--password-stdin"),
        "p",
        "username",
    ),
    ErrorCase(
        "no-username-no-password",
        (),
        (),
        None,
        "username",
    ),
    ErrorCase(
        "empty-server",
        ("--docker-server=", "--docker-username=u", "--docker-password=p"),
        ("--docker-server=", "--docker-username=u", "--password-stdin"),
        "p",
        "server",
    ),
    # kubectl asks for a name before anything else, and before any rule of names.
    ErrorCase(
        "empty-name",
        ("--docker-username=u", "--docker-password=p"),
        ("--docker-username=u", "--docker-password=p"),  # and no warning about it either
        None,
        "name",
        mirrors=NAME_REQUIRED,
        name="",
    ),
    ErrorCase("empty-name-and-nothing-else", (), (), None, "name", NAME_REQUIRED, name=""),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.id for c in ERROR_CASES])
def test_kubectl_errors_are_errors_too(
    kube_env: dict[str, str], case: ErrorCase, tmp_path: Path
) -> None:
    reference = run(
        [
            "kubectl",
            "create",
            "secret",
            "docker-registry",
            case.name,
            *case.kubectl_args,
            "--dry-run=client",
            "-o",
            "json",
        ],
        env=kube_env,
    )
    assert reference.returncode != 0, reference.describe()
    assert reference.out == b"", reference.describe()
    assert len(reference.stderr.splitlines()) == 1, reference.describe()

    result = pk(
        "secret",
        "create",
        "docker-registry",
        case.name,
        *case.pk_args,
        "-o",
        "json",
        stdin=case.stdin,
        env=kube_env,
        cwd=tmp_path,
    )
    line = assert_one_line_error(result)
    assert result.out == b"", result.describe()
    assert case.mentions in line.lower(), result.describe()
    if case.mirrors is not None:
        assert reference.stderr == f"error: {case.mirrors}\n", reference.describe()
        assert result.stderr == reference.stderr, result.describe()


def test_every_kubectl_message_pullkeeper_repeats_is_held_to_kubectls() -> None:
    """A message of kubectl's that `secret create` repeats is checked above, against the
    real kubectl's, by at least one case."""
    assert {c.mirrors for c in ERROR_CASES} - {None} == set(KUBECTL_MESSAGES)


def test_password_twice_is_an_error(kube_env: dict[str, str]) -> None:
    result = pk(
        "secret",
        "create",
        "docker-registry",
        "regcred",
        "--docker-username=u",
        "--docker-password=s3cret-once",
        "--password-stdin",
        stdin="s3cret-twice",
        env=kube_env,
    )
    line = assert_one_line_error(result)
    assert result.out == b""
    assert "s3cret" not in result.stderr
    assert line.startswith("error:")


@pytest.mark.parametrize(
    ("username", "says"),
    [("ci:bot", "cannot contain ':'"), ("ci\nbot", "a line feed"), ("ci\rbot", "carriage")],
    ids=["colon", "line-feed", "carriage-return"],
)
def test_user_names_auth_cannot_carry_are_refused_where_kubectl_takes_them(
    kube_env: dict[str, str], username: str, says: str
) -> None:
    """The one place pullkeeper parts from kubectl: kubectl writes a Secret that logs in
    as someone else (the kubelet splits `auth` at its first ':'); pullkeeper refuses."""
    case = Case("odd-user", "s3cret-Pw", username=username)
    reference = kubectl(kube_env, case, "json")
    entry = json.loads(payload(json.loads(reference.out)))["auths"]["registry.example.com"]
    if ":" in username:
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        assert (user, password) == ("ci", "bot:s3cret-Pw")  # not the login typed
    result = pk_with_stdin(kube_env, case, "json", case.password)
    line = assert_one_line_error(result)
    assert result.out == b"", result.describe()
    assert line.startswith("error: --docker-username: a registry user name cannot contain")
    assert says in line and "s3cret" not in result.stderr
