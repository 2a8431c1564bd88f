"""What the one-shot commands and the help of others load: none of the server stack, no YAML
reader unless asked, no certificate library unless a certificate is looked at.

Each command runs as a new process through the console script's entry point, with an
atexit hook that writes the names in sys.modules as the process ends: what was loaded by
the time the command finished, whatever path it took.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest

from pullkeeper.cli import main
from tests.integration.conftest import Registry, b64, isolated_env, run

# The server's stack, the certificate libraries and httpx's own command-line client:
# a one-shot command that loads any of them pays for what it does not use.
SERVER_STACK = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "psycopg",
        "fastapi",
        "fastapi_offline",
        "starlette",
        "uvicorn",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "jinja2",
        "multipart",
        "python_multipart",
        "prometheus_client",
        "argon2",
        "lightkube",
        "httpx2",
    }
)
CERTIFICATES = frozenset({"cryptography", "OpenSSL"})
HTTPX_CLI = frozenset({"rich", "pygments"})
# No invocation below reads or writes YAML, except the one that says it does.
FORBIDDEN = SERVER_STACK | CERTIFICATES | HTTPX_CLI | {"yaml"}

# Runs the console script's entry point as `pullkeeper` would, and at exit writes the
# loaded modules' names (as JSON) to the file named in argv[1]; a None entry is a module
# kept from loading, not a loaded one.
_WRAPPER = """
import atexit, importlib, sys

def _dump(path=sys.argv.pop(1)):
    import json
    with open(path, "w") as f:
        json.dump(sorted(n for n, m in sys.modules.items() if m is not None), f)

atexit.register(_dump)
module, _, attr = sys.argv.pop(1).partition(":")
sys.argv[0] = "pullkeeper"
sys.exit(getattr(importlib.import_module(module), attr)())
"""


def _entry_point() -> str:
    (script,) = entry_points(group="console_scripts", name="pullkeeper")
    return str(script.value)


def loaded(
    tmp_path: Path, args: Sequence[str], env: dict[str, str], stdin: str | None = None
) -> tuple[set[str], int, str]:
    """The names of the modules `pullkeeper ARGS` loaded, its exit status and its stdout."""
    out = tmp_path / "modules.json"
    result = run(
        [sys.executable, "-c", _WRAPPER, str(out), _entry_point(), *args], stdin=stdin, env=env
    )
    assert "Traceback" not in result.stderr, result.describe()
    modules = json.loads(out.read_text())
    return set(modules), result.returncode, result.stdout


def packages(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_the_registry_client_imports_without_the_server_stack() -> None:
    code = (
        "import sys, pullkeeper.registry.client, pullkeeper.registry.pool, "
        "pullkeeper.services.pull_trial; "
        "print(' '.join(n for n, m in sys.modules.items() if m is not None))"
    )
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.describe()
    modules = set(result.stdout.split())
    assert {"pullkeeper.registry.client", "httpx"} <= modules
    assert packages(modules) & (SERVER_STACK | CERTIFICATES | {"yaml"}) == set()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No saved login and no ~/.docker/config.json: nothing sends a command elsewhere."""
    return isolated_env(tmp_path / "home")


@pytest.mark.parametrize(
    ("args", "module"),
    [
        pytest.param(args, module, id=" ".join(args))
        for args, module in [
            (("image", "parse", "nginx"), "pullkeeper.services.images"),
            (("check", "--help"), "pullkeeper.cli.check"),
            (("creds", "resolve", "--help"), "pullkeeper.cli.resolve"),
            (("kubelet-credential-provider", "--help"), "pullkeeper.cli.credential_provider"),
            (("secret", "create", "docker-registry", "--help"), "pullkeeper.cli.secret"),
            (("completion", "bash"), "pullkeeper.cli.completion"),
            # The help of commands that do load some of it when they run.
            (("serve", "--help"), "pullkeeper.cli.serve"),
            (("registry", "trust", "--help"), "pullkeeper.cli.registry"),
            (("credential", "list", "--help"), "pullkeeper.cli.credential"),
        ]
    ],
)
def test_without_network_nothing_heavy_loads(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], module: str
) -> None:
    modules, status, _ = loaded(tmp_path, args, env)
    assert status == 0
    assert module in modules  # the dump saw the command's own module
    assert packages(modules) & (FORBIDDEN | {"httpx", "httpcore"}) == set()


def test_the_command_list_loads_no_subcommand(tmp_path: Path, env: dict[str, str]) -> None:
    modules, status, stdout = loaded(tmp_path, ("--help",), env)
    assert status == 0
    assert "check                        Whether each IMAGE can be pulled" in stdout
    assert {m for m in modules if m.startswith("pullkeeper.cli.")} == {"pullkeeper.cli.main"}
    assert packages(modules) & (FORBIDDEN | {"httpx", "httpcore"}) == set()


def test_the_command_list_says_what_each_command_says_of_itself() -> None:
    """The summaries the list is written from are each command's own first sentence: the
    list reads the same as click writes it from the commands, at any width."""
    ctx = click.Context(main.cli)
    for width in (40, 80, 120, 200):
        ours, clicks = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
        main.cli.format_commands(ctx, ours)
        click.Group.format_commands(main.cli, ctx, clicks)
        assert ours.getvalue() == clicks.getvalue(), width


def test_a_tab_on_a_command_name_loads_no_subcommand(tmp_path: Path, env: dict[str, str]) -> None:
    asked = {**env, "_PULLKEEPER_COMPLETE": "bash_complete", "COMP_WORDS": "pullkeeper c"}
    modules, status, stdout = loaded(tmp_path, (), asked | {"COMP_CWORD": "1"})
    assert status == 0
    assert "plain,credential\n" in stdout
    assert {m for m in modules if m.startswith("pullkeeper.cli.")} == {"pullkeeper.cli.main"}
    assert packages(modules) & (FORBIDDEN | {"httpx", "httpcore"}) == set()


def test_command_names_complete_as_click_completes_them_from_the_commands() -> None:
    ctx = click.Context(main.cli)
    for incomplete in ("", "c", "cre", "no-such"):
        ours = main.cli.shell_complete(ctx, incomplete)
        clicks = click.Group.shell_complete(main.cli, ctx, incomplete)
        assert [(i.value, i.help) for i in ours] == [(i.value, i.help) for i in clicks]


def test_creds_resolve_from_a_config_file(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"registry.example.com": {"auth": b64("u:p")}}}))
    modules, status, stdout = loaded(
        tmp_path,
        ("creds", "resolve", "registry.example.com/app", "--config", str(config), "-o", "json"),
        env,
    )
    assert status == 0
    assert "registry.example.com" in stdout
    assert "pullkeeper.services.config_files" in modules
    assert packages(modules) & (FORBIDDEN | {"httpx", "httpcore"}) == set()


def test_the_kubelets_credential_provider(tmp_path: Path, env: dict[str, str]) -> None:
    """It runs on every pull the kubelet has no cached answer for: the least it can load."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"registry.example.com": {"auth": b64("u:p")}}}))
    request = (
        '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
        '"image":"registry.example.com/app"}\n'
    )
    modules, status, stdout = loaded(
        tmp_path, ("kubelet-credential-provider", "--config", str(config)), env, stdin=request
    )
    assert status == 0
    assert json.loads(stdout)["auth"] == {
        "registry.example.com": {"username": "u", "password": "p"}
    }
    assert "pullkeeper.cli.credential_provider" in modules
    assert packages(modules) & (FORBIDDEN | {"httpx", "httpcore"}) == set()


# The clouds' SDKs: only an exchange loads one.
CLOUD_SDKS = frozenset({"boto3", "botocore", "google", "azure", "msal"})
_REQUEST = (
    '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
    '"image":"quay.io/app"}\n'
)


def test_the_credential_provider_with_an_identity_loads_no_sdk_for_another_registry(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """An image not of the identity's registry is answered without an exchange: no SDK, no
    httpx; a JSON identity file loads no YAML reader."""
    identity = tmp_path / "identity.json"
    identity.write_text(
        json.dumps({"provider": "ecr", "server": "123456789012.dkr.ecr.eu-west-1.amazonaws.com"})
    )
    modules, status, stdout = loaded(
        tmp_path, ("kubelet-credential-provider", "--identity", str(identity)), env, _REQUEST
    )
    assert status == 0
    assert json.loads(stdout)["auth"] == {}
    assert "pullkeeper.services.provider_identity" in modules
    assert packages(modules) & (FORBIDDEN | CLOUD_SDKS | {"httpx", "httpcore"}) == set()


def test_the_credential_provider_asking_a_server_loads_httpx_only(
    tmp_path: Path, env: dict[str, str]
) -> None:
    token = tmp_path / "token"
    token.write_text("pk_node-token")
    args = (
        *("kubelet-credential-provider", "--server", "http://127.0.0.1:9", "--cluster", "c1"),
        *("--token-file", str(token)),
    )
    modules, status, stdout = loaded(tmp_path, args, env, _REQUEST)
    assert status == 1  # nothing listens on port 9
    assert stdout == ""
    assert "httpx" in packages(modules)
    assert packages(modules) & (FORBIDDEN | CLOUD_SDKS) == set()


def test_secret_create(tmp_path: Path, env: dict[str, str]) -> None:
    modules, status, stdout = loaded(
        tmp_path,
        (
            "secret",
            "create",
            "docker-registry",
            "regcred",
            "--docker-username",
            "u",
            "--password-stdin",
        ),
        env,
        stdin="p",
    )
    assert status == 0
    assert "\nkind: Secret\n" in stdout
    # The default output is YAML, as kubectl's: PyYAML is what it needs beyond the command.
    assert packages(modules) & FORBIDDEN == {"yaml"}
    modules, status, stdout = loaded(
        tmp_path,
        (
            *("secret", "create", "docker-registry", "regcred"),
            *("--docker-username", "u", "--password-stdin", "-o", "json"),
        ),
        env,
        stdin="p",
    )
    assert status == 0
    assert json.loads(stdout)["kind"] == "Secret"
    assert packages(modules) & (FORBIDDEN | {"httpx", "httpcore"}) == set()


def _check(registry: Registry, tmp_path: Path, *extra: str) -> tuple[set[str], int, str]:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"auths": {registry.host: {"auth": b64(f"{registry.username}:{registry.password}")}}}
        )
    )
    args = ("check", registry.image, "--config", str(config), "-o", "json", *extra)
    return loaded(tmp_path, args, dict(registry.env))


@pytest.mark.integration
def test_check_against_a_registry_over_tls(registry: Registry, tmp_path: Path) -> None:
    modules, status, stdout = _check(
        registry, tmp_path, "--ca-file", str(registry.cert_dir / "ca.crt")
    )
    assert status == 0
    assert json.loads(stdout)["digest"] == registry.digest
    assert {"httpx", "ssl", "pullkeeper"} <= packages(modules)
    assert "pullkeeper.registry.client" in modules
    assert packages(modules) & FORBIDDEN == set()


@pytest.mark.integration
def test_check_of_an_untrusted_registry_reads_its_certificate(
    registry: Registry, tmp_path: Path
) -> None:
    """The diagnosis of a refused certificate is what loads pyOpenSSL and cryptography."""
    modules, status, stdout = _check(registry, tmp_path)
    assert status == 1
    assert json.loads(stdout)["attempts"][0]["cause"] == "tls_untrusted"
    assert packages(modules) & FORBIDDEN == CERTIFICATES
