"""The server commands of the real `pullkeeper` executable against a real `pullkeeper serve`.

A server process is started on a free port of 127.0.0.1 with a temporary data
directory; the CLI is driven as a user would drive it, each user with their own
HOME and config directory: login with the admin password the first start
writes to a file, clusters, projects, namespaces, credentials (passwords on stdin),
policies, members and what they may see, tokens, the audit trail, logout, and
the errors a user meets. Every output is checked for secrets: no password or
token is ever printed, except by `credential config` and `token create`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import PULLKEEPER, RUN_TIMEOUT, Registry, Result, assert_one_line_error, run
from .test_registry_trust import on_terminal

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "pk_integration-admin-token-0123456789"
ALICE_PASSWORD = "alice-pässwörd-1"  # throwaway test credentials
BOB_PASSWORD = "bob-password-22"
QUAY_PASSWORD = "quay:s3cr&t-<1>"
QUAY_PASSWORD_2 = "quay-rotated-2"
HUB_PASSWORD = "hub-s3cret-3"
GHCR_PASSWORD = "ghcr-s3cret-4"
QUAY_NEWER_PASSWORD = "quay-newer-5"


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clean_environ() -> dict[str, str]:
    """The environment without settings of ours or proxies that could change the outcome."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PULLKEEPER_") and not k.lower().endswith("_proxy")
    }


def _ready(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    stderr_log: Path
    data: Path

    @property
    def admin_password(self) -> str:
        """The first-start admin's password, from the file serve names (never its output)."""
        text = self.stderr_log.read_text(errors="replace")
        match = re.search(r"^  password:\s+in (\S+) ", text, re.MULTILINE)
        assert match, f"serve named no file with the first-start password:\n{text}"
        path = Path(match.group(1))
        assert path == (self.data / "initial-admin-password").resolve(), path
        return path.read_text().removesuffix("\n")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_server(
    base: Path,
    extra: Sequence[str] = (),
    admin_token: str | None = ADMIN_TOKEN,
    settings: Mapping[str, str] | None = None,
) -> Server:
    """`pullkeeper serve [extra...]` on a free port, ready (GET /readyz is 200); `settings`
    are PULLKEEPER_* variables of its environment."""
    base.mkdir(parents=True, exist_ok=True)
    env = _clean_environ()
    env.update(
        HOME=str(base / "server-home"),
        # The test registries listen on loopback, which the server reaches only when allowed.
        PULLKEEPER_EGRESS_ALLOW='["127.0.0.1"]',
        **(settings or {}),
    )
    if admin_token is not None:
        env["PULLKEEPER_ADMIN_TOKEN"] = admin_token
    stderr_log = base / "serve.err"
    for _attempt in range(3):
        port = free_port()  # another process may take it before serve binds: retry
        url = f"http://127.0.0.1:{port}"
        with (base / "serve.out").open("ab") as out, stderr_log.open("wb") as err:
            proc = subprocess.Popen(
                [
                    PULLKEEPER,
                    "serve",
                    "--data",
                    str(base / "data"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    *extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
            )
        server = Server(url, proc, stderr_log, base / "data")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if _ready(url):
                return server
            time.sleep(0.05)
        server.stop()
    pytest.fail("pullkeeper serve did not become ready:\n" + stderr_log.read_text(errors="replace"))


# --------------------------------------------------------------------------- users of the CLI


@dataclass
class User:
    name: str
    home: Path
    env: dict[str, str]

    @property
    def session_file(self) -> Path:
        config = Path(self.env.get("XDG_CONFIG_HOME") or self.home / ".config")
        return config / "pullkeeper" / "session.json"

    def session(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.session_file.read_text())
        return data


def make_user(base: Path, name: str, *, xdg: bool = True) -> User:
    """A user of the CLI with a HOME of their own and nothing from the caller's settings."""
    home = base / f"home-{name}"
    home.mkdir(parents=True, exist_ok=True)
    env = _clean_environ()
    outside_settings = ("XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "DOCKER_CONFIG", "KUBECONFIG")
    for outside in (*outside_settings, "EDITOR", "VISUAL"):
        env.pop(outside, None)
    env["HOME"] = str(home)
    if xdg:  # else the default, ~/.config
        env["XDG_CONFIG_HOME"] = str(home / ".config")
    return User(name, home, env)


@dataclass
class Cli:
    """Runs the CLI as a user, and checks that nothing it prints holds a secret."""

    server: Server
    base: Path
    secrets: set[str] = field(default_factory=set)

    def user(self, name: str, *, xdg: bool = True) -> User:
        return make_user(self.base, name, xdg=xdg)

    def run(
        self,
        user: User,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        reveal: bool = False,
        umask: int = -1,
    ) -> Result:
        proc = subprocess.run(
            [PULLKEEPER, *args],
            input=stdin.encode() if stdin is not None else None,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            env={**user.env, **(env or {})},
            timeout=RUN_TIMEOUT,
            check=False,
            umask=umask,
        )
        result = Result([PULLKEEPER, *args], proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in result.stderr, result.describe()
        if not reveal:
            said = result.stdout + result.stderr
            leaked = [s for s in self.secrets if s in said]
            assert not leaked, f"a secret was printed\n{result.describe()}"
        return result

    def ok(self, user: User, *args: str, **kwargs: Any) -> Result:
        result = self.run(user, *args, **kwargs)
        assert result.returncode == 0, result.describe()
        return result

    def json(self, user: User, *args: str, **kwargs: Any) -> Any:
        return self.ok(user, *args, "-o", "json", **kwargs).json()

    def fails(self, user: User, *args: str, **kwargs: Any) -> str:
        """The one line on stderr of a refused command (exit status 2, nothing on stdout)."""
        result = self.run(user, *args, **kwargs)
        line = assert_one_line_error(result)
        assert line.startswith("error: "), result.describe()
        assert result.out == b"", result.describe()
        return line

    def login(self, user: User, password: str, **kwargs: Any) -> Result:
        result = self.ok(
            user,
            "login",
            self.server.url,
            "--username",
            user.name,
            "--password-stdin",
            stdin=password + "\n",
            **kwargs,
        )
        self.secrets.add(user.session()["token"])
        return result


@dataclass
class World:
    cli: Cli
    admin: User
    ids: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("pkserver"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def world(server: Server, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The admin logged in, and a cluster, projects, namespaces and credentials made with the
    CLI (each step checked)."""
    cli = Cli(server, tmp_path_factory.mktemp("pkusers"))
    password = server.admin_password
    cli.secrets |= {
        password,
        ADMIN_TOKEN,
        ALICE_PASSWORD,
        BOB_PASSWORD,
        QUAY_PASSWORD,
        QUAY_PASSWORD_2,
        HUB_PASSWORD,
        GHCR_PASSWORD,
        QUAY_NEWER_PASSWORD,
    }
    admin = cli.user("admin")
    # A config directory anyone can read is made private by login.
    (admin.home / ".config" / "pullkeeper").mkdir(parents=True, mode=0o755)
    os.chmod(admin.home / ".config" / "pullkeeper", 0o755)  # noqa: S103 - on purpose
    result = cli.login(admin, password, umask=0)  # a permissive umask changes nothing
    assert result.stdout.startswith(f"Logged in to {server.url} as admin (admin).\n")

    ids: dict[str, str] = {}
    cli.ok(admin, "cluster", "create", "prod", "--description", "Production")
    cli.ok(admin, "cluster", "create", "staging", "--access", "in-cluster")
    for name in ("team-a", "team-b"):
        ids[name] = cli.json(admin, "project", "create", name, "--cluster", "prod")["id"]
    cli.ok(admin, "namespace", "put", "web", "--cluster", "prod", "--project", "team-a")
    cli.ok(admin, "namespace", "put", "api", "--cluster", "prod", "--project", "team-b")
    cli.ok(admin, "namespace", "put", "tools", "--cluster", "prod")
    made = cli.ok(
        admin,
        "credential",
        "create",
        "quay-ro",
        "--cluster",
        "prod",
        "--scope",
        "namespace",
        "-n",
        "web",
        "--provider",
        "quay",
        "--username",
        "team-a+bot",
        "--password-stdin",
        "--description",
        "read-only robot",
        stdin=QUAY_PASSWORD + "\n",
    )
    match = re.fullmatch(r"credential quay-ro created \(id ([0-9a-f]{32}), active\)\n", made.stdout)
    assert match, made.describe()
    ids["quay-ro"] = match.group(1)
    ids["hub"] = cli.json(
        admin,
        "credential",
        "create",
        "hub",
        "--cluster",
        "prod",
        "--scope",
        "cluster",
        "--provider",
        "dockerhub",
        "--username",
        "acme",
        "--password-stdin",
        stdin=HUB_PASSWORD,
    )["id"]
    ids["ghcr-b"] = cli.json(
        admin,
        "credential",
        "create",
        "ghcr-b",
        "--cluster",
        "prod",
        "--scope",
        "project",
        "--project",
        "team-b",
        "--provider",
        "ghcr",
        "--username",
        "bbot",
        "--password-stdin",
        "--inactive",
        stdin=GHCR_PASSWORD,
    )["id"]
    return World(cli, admin, ids)


# --------------------------------------------------------------------------- login


def test_login_keeps_a_private_session(world: World) -> None:
    session_file = world.admin.session_file
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(session_file.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in session_file.parent.iterdir()) == ["session.json"]
    session = world.admin.session()
    assert session["server"] == world.cli.server.url
    assert session["username"] == "admin"
    assert session["token"].startswith("pk_")
    assert session["token"] != ADMIN_TOKEN  # a new token, issued by POST /login
    assert re.fullmatch(r"[0-9a-f]{32}", session["token_id"])


def test_login_refusals(world: World) -> None:
    cli, someone = world.cli, world.cli.user("someone")
    url = cli.server.url
    line = cli.fails(someone, "login", url, "-u", "admin", "--password-stdin", stdin="nope\n")
    assert line == "error: wrong user name or password"
    line = cli.fails(someone, "login", url, "-u", "admin")  # stdin is not a terminal
    assert line == "error: no terminal to ask for the password: pipe it in with --password-stdin"
    line = cli.fails(someone, "login", "localhost:8080", "-u", "a", "--password-stdin", stdin="x")
    assert "is not a server URL" in line
    assert not someone.session_file.exists()


def test_default_config_directory_and_token_stdin(world: World) -> None:
    cli = world.cli
    carol = cli.user("carol", xdg=False)
    issued = cli.json(world.admin, "token", "create", "--name", "carol-ci", reveal=True)
    cli.secrets.add(issued["token"])
    result = cli.ok(carol, "login", cli.server.url + "/", "--token-stdin", stdin=issued["token"])
    assert result.stdout.startswith(f"Logged in to {cli.server.url} as admin (admin).")
    session_file = carol.home / ".config" / "pullkeeper" / "session.json"
    assert session_file == carol.session_file
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert cli.json(carol, "cluster", "list")["items"][0]["name"] == "prod"
    # A token given to login is not one logout knows how to revoke: it says so.
    out = cli.ok(carol, "logout").stdout
    assert "stays valid" in out
    assert not session_file.exists()
    as_ci = {"PULLKEEPER_SERVER": cli.server.url, "PULLKEEPER_TOKEN": issued["token"]}
    assert cli.json(carol, "cluster", "show", "prod", env=as_ci)["name"] == "prod"


# --------------------------------------------------------------------------- objects


def test_clusters_as_table_json_and_yaml(world: World) -> None:
    cli, admin = world.cli, world.admin
    table = cli.ok(admin, "cluster", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "ACCESS", "KUBECONFIG", "CONTEXT", "DESCRIPTION"]
    assert table[1].split() == ["prod", "kubeconfig", "-", "-", "Production"]
    assert table[2].split() == ["staging", "in-cluster", "-", "-", "-"]
    as_json = cli.json(admin, "cluster", "list")
    as_yaml = yaml.safe_load(cli.ok(admin, "cluster", "list", "-o", "yaml").stdout)
    assert as_json == as_yaml
    assert [c["name"] for c in as_json["items"]] == ["prod", "staging"]
    shown = cli.ok(admin, "cluster", "show", "prod").stdout
    assert "name:        prod\n" in shown
    assert "description: Production\n" in shown
    edited = cli.json(admin, "cluster", "edit", "staging", "--description", "Staging")
    assert edited["description"] == "Staging"
    assert edited["updated_by"] == "admin"
    line = cli.fails(admin, "cluster", "show", "nope")
    assert line == "error: no cluster 'nope'"
    line = cli.fails(admin, "cluster", "create", "prod")
    assert line == "error: a cluster named 'prod' already exists (field: name)"
    line = cli.fails(admin, "cluster", "edit", "prod")
    assert line.startswith("error: nothing to change")


def test_projects_and_namespaces(world: World) -> None:
    cli, admin = world.cli, world.admin
    rows = [r.split() for r in cli.ok(admin, "project", "list").stdout.splitlines()]
    assert rows[0] == ["CLUSTER", "NAME", "DESCRIPTION", "CREATED", "BY", "ID"]
    assert [r[:2] for r in rows[1:]] == [["prod", "team-a"], ["prod", "team-b"]]
    p = cli.json(admin, "project", "show", "team-a", "--cluster", "prod")
    assert (p["id"], p["cluster"]) == (world.ids["team-a"], "prod")
    p = cli.json(admin, "project", "edit", "team-a", "--description", "Team A")
    assert p["description"] == "Team A"
    text = cli.ok(admin, "project", "show", world.ids["team-a"]).stdout
    assert "description: Team A\n" in text
    namespaces = cli.ok(admin, "namespace", "list", "--cluster", "prod").stdout.splitlines()
    assert [r.split() for r in namespaces] == [
        ["NAMESPACE", "PROJECT"],
        ["api", "team-b"],
        ["tools", "-"],
        ["web", "team-a"],
    ]
    only_a = cli.json(admin, "namespace", "list", "--cluster", "prod", "--project", "team-a")
    assert [n["name"] for n in only_a["items"]] == ["web"]
    # Moving a namespace in and out of a project, then forgetting it.
    out = cli.ok(admin, "namespace", "put", "tmp", "--cluster", "prod", "--project", "team-b")
    assert out.stdout == "namespace tmp in cluster prod: project team-b\n"
    ns = yaml.safe_load(
        cli.ok(admin, "namespace", "put", "tmp", "--cluster", "prod", "-o", "yaml").stdout
    )
    assert ns["project"] is None
    cli.ok(admin, "namespace", "delete", "tmp", "--cluster", "prod")
    line = cli.fails(admin, "project", "show", "team-a", "--cluster", "staging")
    assert line == "error: no project 'team-a' in cluster 'staging'"


# --------------------------------------------------------------------------- credentials


def test_credentials_list_and_show(world: World) -> None:
    cli, admin = world.cli, world.admin
    rows = [r.split() for r in cli.ok(admin, "credential", "list").stdout.splitlines()]
    assert rows[0] == [
        "ID",
        "NAME",
        "CLUSTER",
        "SCOPE",
        "PROVIDER",
        "REGISTRY",
        "USERNAME",
        "STATE",
        "CHECK",
    ]
    by_name = {r[1]: r for r in rows[1:]}
    assert by_name["ghcr-b"] == [
        world.ids["ghcr-b"],
        "ghcr-b",
        "prod",
        "project",
        "team-b",
        "ghcr",
        "ghcr.io",
        "bbot",
        "inactive",
        "never",
    ]
    hub = ["cluster", "dockerhub", "https://index.docker.io/v1/", "acme", "active", "never"]
    assert by_name["hub"][3:] == hub
    page = cli.json(admin, "credential", "list", "--state", "active")
    assert {c["name"] for c in page["items"]} == {"hub", "quay-ro"}
    assert page["total"] == 2
    names = [c["name"] for c in cli.json(admin, "credential", "list")["items"]]
    every = cli.json(admin, "credential", "list", "--limit", "1", "--all")
    assert [c["name"] for c in every["items"]] == names
    one = cli.json(admin, "credential", "list", "--limit", "1")
    after = cli.json(admin, "credential", "list", "--limit", "1", "--cursor", one["next"])
    assert [c["name"] for c in after["items"]] == names[1:2]
    as_yaml = yaml.safe_load(cli.ok(admin, "credential", "show", "quay-ro", "-o", "yaml").stdout)
    assert as_yaml == cli.json(admin, "credential", "show", world.ids["quay-ro"])
    assert "password" not in as_yaml
    text = cli.ok(admin, "credential", "show", "quay-ro").stdout
    assert "scope:       namespace web\n" in text
    assert "registry:    quay.io\n" in text
    assert "description: read-only robot\n" in text


def test_credential_edit_needs_the_password_again(world: World) -> None:
    cli, admin, cid = world.cli, world.admin, world.ids["quay-ro"]
    line = cli.fails(admin, "credential", "edit", cid, "--username", "team-a+robot")
    assert "needs the password again" in line
    assert "--password-stdin" in line
    assert cli.json(admin, "credential", "show", cid)["username"] == "team-a+bot"
    out = cli.ok(
        admin,
        "credential",
        "edit",
        "quay-ro",
        "--username",
        "team-a+robot",
        "--password-stdin",
        stdin=QUAY_PASSWORD_2 + "\n",
    ).stdout
    assert out == "credential quay-ro updated; password replaced\n"
    c = cli.json(admin, "credential", "edit", cid, "--description", "robot")
    assert (c["username"], c["description"]) == ("team-a+robot", "robot")
    config = cli.ok(admin, "credential", "config", "quay-ro", reveal=True)
    auths = json.loads(config.out)["auths"]
    assert auths["quay.io"]["username"] == "team-a+robot"
    assert auths["quay.io"]["password"] == QUAY_PASSWORD_2
    assert base64.b64decode(auths["quay.io"]["auth"]).decode() == f"team-a+robot:{QUAY_PASSWORD_2}"
    line = cli.fails(admin, "credential", "edit", cid)
    assert line.startswith("error: nothing to change")


def test_activate_deactivate_and_effective(world: World) -> None:
    cli, admin = world.cli, world.admin

    def effective(*extra: str) -> list[str]:
        got = cli.json(admin, "credential", "effective", "-n", "web", "--cluster", "prod", *extra)
        return [c["secret_name"] for c in got["items"]]

    assert effective() == ["quay-ro", "hub"]
    assert effective("--image", "quay.io/team-a/app:v1") == ["quay-ro"]
    assert effective("--image", "nginx") == ["hub"]
    text = cli.ok(admin, "credential", "effective", "-n", "web", "--cluster", "prod").stdout
    lines = text.splitlines()
    assert lines[0] == (
        "2 credentials in namespace web of cluster prod, in the order the kubelet tries them:"
    )
    assert lines[1].split() == ["#", "SECRET", "SCOPE", "REGISTRY", "USERNAME", "ID"]
    assert lines[2].split()[:4] == ["1", "quay-ro", "namespace", "web"]

    out = cli.ok(admin, "credential", "deactivate", "quay-ro").stdout
    assert out == "credential quay-ro is inactive\n"
    assert effective() == ["hub"]
    assert cli.ok(admin, "credential", "activate", "quay-ro").stdout == (
        "credential quay-ro is active\n"
    )
    assert effective() == ["quay-ro", "hub"]

    # A newer active credential for the same registry and scope supersedes the older one.
    newer = cli.json(
        admin,
        "credential",
        "create",
        "quay-newer",
        "--cluster",
        "prod",
        "--scope",
        "namespace",
        "-n",
        "web",
        "--provider",
        "quay",
        "--username",
        "team-a+new",
        "--password-stdin",
        stdin=QUAY_NEWER_PASSWORD,
    )
    listed = cli.ok(admin, "credential", "list", "-n", "web", "--cluster", "prod").stdout
    states = {r.split()[1]: r.split()[-2] for r in listed.splitlines()[1:]}
    assert states == {"hub": "active", "quay-newer": "active", "quay-ro": "superseded"}
    assert effective() == ["quay-newer", "hub"]
    cli.ok(admin, "credential", "delete", newer["id"])
    assert effective() == ["quay-ro", "hub"]
    line = cli.fails(admin, "credential", "show", newer["id"])
    assert line == f"error: no credential {newer['id']!r}"
    line = cli.fails(admin, "credential", "effective", "-n", "nope", "--cluster", "prod")
    assert line == "error: no namespace 'nope' in cluster 'prod'"


def test_credential_create_refusals(world: World) -> None:
    cli, admin = world.cli, world.admin
    base = ("credential", "create", "x", "--cluster", "prod", "--provider", "quay")
    line = cli.fails(admin, *base, "--scope", "namespace", "--username", "u")
    assert line == "error: no terminal to ask for the password: pipe it in with --password-stdin"
    line = cli.fails(
        admin, *base, "--scope", "namespace", "--username", "u", "--password-stdin", stdin="pw"
    )
    assert line == "error: a namespace-scoped credential needs a namespace (field: namespace)"
    line = cli.fails(
        admin,
        *base,
        "--scope",
        "cluster",
        "--username",
        "u",
        "--password-stdin",
        "--registry",
        "ghcr.io",
        stdin="pw",
    )
    assert line == "error: 'ghcr.io' is not quay.io (field: server)"
    line = cli.fails(admin, *base, "--scope", "cluster", "--password-stdin", stdin="\n")
    assert line == "error: the password on standard input is empty"
    # No flag takes a password.
    result = cli.run(admin, *base, "--scope", "cluster", "--password", "pw")
    assert result.returncode == 2
    assert "No such option '--password'" in result.stderr


# --------------------------------------------------------------------------- policy


def test_policy_set_show_and_effective(world: World) -> None:
    cli, admin = world.cli, world.admin
    result = cli.ok(
        admin,
        "policy",
        "set",
        "--cluster",
        "prod",
        "--allow",
        "quay.io",
        "--allow",
        "*.example.com",
        "--default-registry",
        "mirror.example.com",
    )
    assert result.stdout == (
        "policy of cluster prod\n"
        "default registry: mirror.example.com\n"
        "allowlist:        quay.io, *.example.com\n"
        "always pull:      (none)\n"
        "service accounts: (none)\n"
        "require digest:   (none)\n"
        "forbid latest:    (none)\n"
        "mode:             (none)\n"
    )
    # nginx goes to mirror.example.com, which *.example.com allows: nothing to warn about.
    assert result.stderr == ""
    moved = cli.run(admin, "policy", "set", "--cluster", "prod", "--default-registry", "m.io")
    assert moved.returncode == 0, moved.stderr
    assert moved.stderr.startswith("warning: the default registry m.io is not on the allowlist")
    cli.ok(admin, "policy", "set", "--cluster", "prod", "--default-registry", "mirror.example.com")
    cli.ok(admin, "policy", "set", "--project", "team-a", "--cluster", "prod", "--always-pull")
    own = cli.ok(admin, "policy", "show", "--project", "team-a").stdout
    assert own == (
        "policy of project team-a\n"
        "default registry: (inherits the cluster's)\n"
        "allowlist:        (inherits the cluster's)\n"
        "always pull:      yes\n"
        "service accounts: (inherits the cluster's)\n"
        "require digest:   (inherits the cluster's)\n"
        "forbid latest:    (inherits the cluster's)\n"
        "mode:             (inherits the cluster's)\n"
    )
    merged = cli.json(admin, "policy", "show", "--project", "team-a", "--effective")
    assert merged["default_registry"] == "mirror.example.com"
    assert merged["allowlist"] == ["quay.io", "*.example.com"]
    assert merged["always_pull"] is True
    as_yaml = cli.ok(admin, "policy", "show", "--cluster", "prod", "-o", "yaml").stdout
    assert yaml.safe_load(as_yaml)["allowlist"] == ["quay.io", "*.example.com"]
    unset = cli.json(admin, "policy", "set", "--cluster", "prod", "--unset", "allowlist")
    assert unset["allowlist"] is None
    assert unset["default_registry"] == "mirror.example.com"
    line = cli.fails(admin, "policy", "set", "--cluster", "prod", "--allow", "quay.io/*")
    assert line.startswith("error: 'quay.io/*' is not an allowlist entry")
    assert line.endswith("(field: allowlist)")
    line = cli.fails(admin, "policy", "show")
    assert line.startswith("error: give --cluster")
    line = cli.fails(admin, "policy", "set", "--cluster", "prod")
    assert line.startswith("error: nothing to change")


# --------------------------------------------------------------------------- members


def test_members_see_only_their_projects(world: World) -> None:
    cli, admin = world.cli, world.admin
    out = cli.ok(admin, "user", "create", "alice", "--password-stdin", stdin=ALICE_PASSWORD)
    assert out.stdout.startswith("user alice created (id ")
    cli.ok(admin, "user", "create", "bob", "--password-stdin", stdin=BOB_PASSWORD + "\n")
    users = cli.ok(admin, "user", "list").stdout.splitlines()
    assert [u.split()[:2] for u in users] == [
        ["USERNAME", "KIND"],
        ["admin", "admin"],
        ["alice", "user"],
        ["bob", "user"],
    ]
    assert cli.ok(admin, "project", "member", "set", "alice", "owner", "-p", "team-a").stdout == (
        "alice is now owner of project team-a\n"
    )
    cli.ok(admin, "project", "member", "set", "bob", "member", "--project", "team-a")
    members = cli.ok(admin, "project", "members", "team-a").stdout.splitlines()
    assert [m.split() for m in members] == [["USER", "ROLE"], ["alice", "owner"], ["bob", "member"]]

    bob = cli.user("bob")
    assert cli.login(bob, BOB_PASSWORD).stdout.startswith(f"Logged in to {cli.server.url} as bob.")
    seen = cli.json(bob, "credential", "list")
    # The cluster-wide "hub" reaches bob's namespaces, so bob sees it; project B's does not.
    assert [c["name"] for c in seen["items"]] == ["hub", "quay-ro"]
    # Project B's credential does not exist for a member of project A, by id or by name.
    line = cli.fails(bob, "credential", "show", world.ids["ghcr-b"])
    assert line == f"error: no credential {world.ids['ghcr-b']!r}"
    assert cli.fails(bob, "credential", "show", "ghcr-b") == "error: no credential 'ghcr-b'"
    assert cli.fails(bob, "project", "show", "team-b") == "error: no project 'team-b'"
    line = cli.fails(bob, "credential", "config", "quay-ro")
    assert line.startswith("error: only an admin or the owner of the credential's project")
    assert cli.fails(bob, "cluster", "create", "mine") == (
        "error: only an admin can register clusters"
    )
    assert cli.fails(bob, "user", "list") == "error: only an admin can list users"

    alice = cli.user("alice")
    cli.login(alice, ALICE_PASSWORD)
    config = json.loads(cli.ok(alice, "credential", "config", "quay-ro", reveal=True).out)
    assert config["auths"]["quay.io"]["password"] in {QUAY_PASSWORD, QUAY_PASSWORD_2}
    cli.ok(alice, "project", "member", "remove", "bob", "--project", "team-a")
    assert cli.json(bob, "credential", "list")["items"] == []
    assert cli.fails(bob, "credential", "show", "quay-ro") == "error: no credential 'quay-ro'"


# --------------------------------------------------------------------------- tokens and audit


def test_tokens_create_list_revoke(world: World) -> None:
    cli, admin = world.cli, world.admin
    created = cli.ok(
        admin, "token", "create", "--name", "ci", "--expires-in-days", "7", reveal=True
    )
    fields = dict(line.split(None, 1) for line in created.stdout.splitlines())
    token, token_id = fields["token:"], fields["id:"]
    cli.secrets.add(token)
    assert token.startswith("pk_")
    assert created.stderr == "This is the only time the token is shown; store it now.\n"

    listed = cli.ok(admin, "token", "list").stdout
    assert token not in listed
    rows = {r.split()[0]: r.split() for r in listed.splitlines()[1:]}
    assert rows[token_id][1:2] == ["ci"]
    assert rows[token_id][-1] == "valid"
    this_session = admin.session()["token_id"]
    assert rows[this_session][1] == "*"

    as_ci = {"PULLKEEPER_SERVER": cli.server.url, "PULLKEEPER_TOKEN": token}
    nobody = cli.user("ci")
    assert cli.json(nobody, "cluster", "list", env=as_ci)["items"]
    assert cli.ok(admin, "token", "revoke", token_id).stdout == f"token {token_id} revoked\n"
    line = cli.fails(nobody, "cluster", "list", env=as_ci)
    assert line == "error: the API token is not valid; log in again"
    revoked = {t["id"]: t for t in cli.json(admin, "token", "list")["items"]}
    assert revoked[token_id]["revoked"] is True
    assert cli.fails(admin, "token", "revoke", "nope") == "error: no token 'nope'"


def test_an_admin_resets_a_users_password(world: World) -> None:
    cli, admin = world.cli, world.admin
    first, second = "erin-password-10", "erin-reset-password-11"
    cli.secrets.update((first, second))
    cli.ok(admin, "user", "create", "erin", "--password-stdin", stdin=first)
    erin = cli.user("erin")
    cli.login(erin, first)
    out = cli.ok(admin, "user", "reset-password", "erin", "--password-stdin", stdin=second + "\n")
    assert out.stdout == "password of erin reset; 1 of their sessions and tokens revoked\n"
    assert cli.fails(erin, "cluster", "list") == "error: the API token is not valid; log in again"
    cli.login(erin, second)
    line = cli.fails(erin, "user", "reset-password", "admin", "--password-stdin", stdin=second)
    assert line == "error: only an admin can reset another user's password"
    # The password rule is checked before anything is sent; the server holds the same rule.
    for weak, says in (
        ("short", "a password needs at least 12 characters"),
        (" " * 12, "a password cannot be only spaces; use letters, digits or other signs too"),
        ("Erin", "a password needs at least 12 characters"),
    ):
        for command in (("reset-password", "erin"), ("create", "erin-two")):
            line = cli.fails(admin, "user", *command, "--password-stdin", stdin=weak)
            assert line == f"error: {says}"
    line = cli.fails(admin, "user", "create", "release-manager", "--password-stdin",
                     stdin="Release-Manager")  # fmt: skip
    assert line == "error: a password cannot be the user name; choose another"
    assert "erin-two" not in cli.ok(admin, "user", "list").stdout
    line = cli.fails(admin, "user", "reset-password", "erin")
    assert (
        line == "error: no terminal to ask for the new password: pipe it in with --password-stdin"
    )


def test_an_admin_disables_enables_and_deletes_a_user(world: World) -> None:
    cli, admin = world.cli, world.admin
    password = "hank-password-12"
    cli.secrets.add(password)
    cli.ok(admin, "user", "create", "hank", "--password-stdin", stdin=password)
    hank = cli.user("hank")
    cli.login(hank, password)
    line = cli.fails(admin, "user", "create", "both", "--admin", "--viewer")
    assert line == "error: a user is an admin or a viewer, not both; give --admin or --viewer"

    out = cli.ok(admin, "user", "disable", "hank")
    assert out.stdout == "user hank disabled; 1 of their sessions and tokens revoked\n"
    assert cli.fails(hank, "cluster", "list") == "error: the API token is not valid; log in again"
    listed = {r.split()[0]: r for r in cli.ok(admin, "user", "list").stdout.splitlines()[1:]}
    assert "user (disabled)" in listed["hank"]
    assert cli.fails(admin, "user", "disable", "admin") == (
        "error: you cannot disable yourself; another admin can"
    )
    assert cli.ok(admin, "user", "enable", "hank").stdout == "user hank enabled\n"
    assert cli.fails(hank, "cluster", "list") == "error: the API token is not valid; log in again"
    cli.login(hank, password)

    # Deleting asks first; with no terminal to ask on, it says what would go and how to go on.
    line = cli.fails(admin, "user", "delete", "hank")
    assert line == (
        "error: standard input is not a terminal, so pullkeeper cannot ask before deleting "
        "hank with their memberships in 0 project(s) and 1 valid token(s); add --yes"
    )
    # On a terminal it asks; "n" keeps the user.
    kept = on_terminal(["user", "delete", "hank"], b"n\n", admin.env)
    assert kept.returncode == 1, kept.describe()
    assert "Delete hank with their memberships in 0 project(s) and 1 valid token(s)?" in (
        kept.stderr
    )
    assert kept.stderr.endswith("Not deleted.\n") and kept.stdout == ""
    assert "hank" in cli.ok(admin, "user", "list").stdout
    assert cli.ok(admin, "user", "delete", "hank", "--yes").stdout == "user hank deleted\n"
    assert cli.fails(hank, "cluster", "list") == "error: the API token is not valid; log in again"
    assert "hank" not in cli.ok(admin, "user", "list").stdout
    for action in ("user.disable", "user.enable", "user.delete"):
        [event] = cli.json(admin, "audit", "--action", action)["items"]
        assert event["actor"] == "admin"


def test_audit_listing(world: World) -> None:
    cli, admin = world.cli, world.admin
    cli.ok(admin, "credential", "config", "hub", reveal=True)
    page = cli.json(admin, "audit", "--action", "credential.read_secret")
    assert page["items"][0]["actor"] == "admin"
    assert page["items"][0]["object_id"] == world.ids["hub"]
    created = cli.json(admin, "audit", "--action", "credential.create", "--user", "admin")
    assert {e["after"]["name"] for e in created["items"]} >= {"quay-ro", "hub", "ghcr-b"}
    assert all(e["action"] == "credential.create" for e in created["items"])
    text = cli.ok(admin, "audit", "--limit", "3").stdout.splitlines()
    assert text[0].split() == ["TIME", "USER", "SOURCE", "ACTION", "OBJECT"]
    assert len(text) == 4
    logins = cli.ok(admin, "audit", "--action", "user.login", "--since", "2000-01-01").stdout
    assert "user.login" in logins
    assert cli.ok(admin, "audit", "--since", "2999-01-01T00:00Z").stdout == "No events.\n"
    line = cli.fails(admin, "audit", "--since", "yesterday")
    assert line.startswith("error: --since 'yesterday' is not an ISO date or time")
    # The trail never holds a secret, and its YAML is the same as its JSON.
    everything = cli.ok(admin, "audit", "--limit", "1000", "-o", "yaml").stdout
    assert yaml.safe_load(everything) == cli.json(admin, "audit", "--limit", "1000")

    # Page by page, by the cursor the page note names, and --all: the same events once each.
    ids = [e["id"] for e in cli.json(admin, "audit", "--limit", "1000")["items"]]
    assert len(ids) > 4
    walked: list[int] = []
    args = ["audit", "--limit", "2"]
    while True:
        result = cli.ok(admin, *args, "-o", "json")
        walked += [e["id"] for e in result.json()["items"]]
        cursor = result.json()["next"]
        if cursor is None:
            break
        args = ["audit", "--limit", "2", "--cursor", cursor]
    assert walked == ids
    every = cli.json(admin, "audit", "--limit", "2", "--all")
    assert ([e["id"] for e in every["items"]], every["next"]) == (ids, None)
    first = cli.ok(admin, "audit", "--limit", "2")
    note = first.stderr.strip()
    assert note.startswith(f"(1-2 of {len(ids)}; --cursor ") and note.endswith(
        " shows the next, --all every one)"
    )
    rest = cli.ok(admin, "audit", "--limit", "2", "--cursor", note.split()[4]).stdout.splitlines()
    assert len(rest) == 3  # the heading and the next two
    line = cli.fails(admin, "audit", "--cursor", "nonsense")
    assert "cursor" in line and "leave cursor out" in line


# --------------------------------------------------------------------------- logout and errors


def test_logout_revokes_the_token(world: World) -> None:
    cli = world.cli
    dave_password = "dave-password-9"
    cli.secrets.add(dave_password)
    cli.ok(world.admin, "user", "create", "dave", "--password-stdin", stdin=dave_password)
    dave = cli.user("dave")
    cli.login(dave, dave_password)
    token = dave.session()["token"]
    out = cli.ok(dave, "logout").stdout
    assert out == f"Logged out of {cli.server.url}. The token is revoked.\n"
    assert not dave.session_file.exists()
    assert cli.ok(dave, "logout").stdout == "Not logged in.\n"
    line = cli.fails(dave, "cluster", "list")
    assert line == (
        "error: not logged in: run `pullkeeper login URL` first, "
        "or set PULLKEEPER_SERVER and PULLKEEPER_TOKEN"
    )
    env = {"PULLKEEPER_SERVER": cli.server.url, "PULLKEEPER_TOKEN": token}
    line = cli.fails(dave, "cluster", "list", env=env)
    assert line == "error: the API token is not valid; log in again"


def test_the_saved_token_goes_only_to_its_server(world: World) -> None:
    cli = world.cli
    other = f"http://127.0.0.1:{free_port()}"
    line = cli.fails(world.admin, "cluster", "list", "--server", other)
    assert line == (
        f"error: not logged in to {other}: run `pullkeeper login {other}` first, "
        "or set PULLKEEPER_TOKEN"
    )


def test_unreachable_servers(world: World) -> None:
    cli, someone = world.cli, world.cli.user("someone-else")
    env = {"PULLKEEPER_TOKEN": "pk_whatever"}
    closed = f"http://127.0.0.1:{free_port()}"
    line = cli.fails(someone, "cluster", "list", "--server", closed, env=env)
    assert line == f"error: cannot connect to {closed}: connection refused (is the server running?)"
    line = cli.fails(someone, "login", closed, "-u", "x", "--password-stdin", stdin="password")
    assert line.startswith(f"error: cannot connect to {closed}: connection refused")
    line = cli.fails(someone, "cluster", "list", "--server", "http://nohost.invalid", env=env)
    assert (
        line == "error: cannot connect to http://nohost.invalid: the host name cannot be resolved"
    )
    https = cli.server.url.replace("http://", "https://")
    line = cli.fails(someone, "cluster", "list", "--server", https, env=env)
    assert line.startswith(f"error: cannot connect to {https}: the TLS handshake failed")
    # A server that accepts the connection and never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        line = cli.fails(
            someone, "cluster", "list", "--server", url, env={**env, "PULLKEEPER_TIMEOUT": "0.5"}
        )
    assert line == (
        f"error: the server at {url} did not answer within 0.5s "
        "(set PULLKEEPER_TIMEOUT to wait longer)"
    )


class _NotQuitePullkeeper(BaseHTTPRequestHandler):
    """Answers a pullkeeper server should not give, by path prefix."""

    def do_GET(self) -> None:
        kind = self.path.split("/")[1]
        status, headers, body = {
            "fails": (
                500,
                {"Content-Type": "application/json"},
                b'{"error": {"code": "internal", "message": "internal error", "field": null}}',
            ),
            "proxy": (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"),
            "moved": (308, {"Location": "https://pk.example.com/api/v1/clusters"}, b""),
            "html": (200, {"Content-Type": "text/html"}, b"<html>hello</html>"),
        }[kind]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_answers_that_are_not_pullkeeper_errors(tmp_path: Path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotQuitePullkeeper)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        someone = make_user(tmp_path, "someone")
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        env = {**someone.env, "PULLKEEPER_TOKEN": "pk_whatever"}

        def error(kind: str, status: int) -> str:
            result = run([PULLKEEPER, "cluster", "list", "--server", f"{base}/{kind}"], env=env)
            line = assert_one_line_error(result, status)
            assert result.out == b"", result.describe()
            return line

        assert error("fails", 1) == "error: the server failed: internal error"
        assert error("proxy", 1) == (
            f"error: the server failed: HTTP 502 Bad Gateway from {base}/proxy"
        )
        assert error("moved", 2) == (
            f"error: {base}/moved redirects to https://pk.example.com/api/v1/clusters; "
            "use that address as the server URL"
        )
        assert error("html", 2) == (
            f"error: the answer from {base}/html is not JSON; is it a pullkeeper server?"
        )
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_server_stopped_under_a_logged_in_user(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server")
    try:
        cli = Cli(server, tmp_path)
        cli.secrets |= {server.admin_password, ADMIN_TOKEN}
        admin = cli.user("admin")
        cli.login(admin, server.admin_password)
        assert cli.ok(admin, "cluster", "list").stdout == "No clusters.\n"
    finally:
        server.stop()
    line = cli.fails(admin, "cluster", "list")
    assert line == (
        f"error: cannot connect to {server.url}: connection refused (is the server running?)"
    )
    result = cli.ok(admin, "logout")
    assert result.stderr.startswith("warning: the token could not be revoked: cannot connect")
    assert result.stdout.startswith(f"Logged out of {server.url}. The token stays valid until ")
    assert not admin.session_file.exists()


# --------------------------------------------------------------------------- config.json


def test_credential_config_merges_a_login_into_a_docker_config(
    world: World, registry: Registry
) -> None:
    """A person's or a CI job's config.json from a stored credential: the registry accepts
    the login skopeo reads from it, everything else in the file stays, and the read is in
    the audit trail."""
    cli, admin = world.cli, world.admin
    cli.secrets.add(registry.password)
    made = cli.json(
        admin,
        "credential",
        "create",
        "local-reg",
        "--cluster",
        "prod",
        "--scope",
        "namespace",
        "-n",
        "tools",
        "--provider",
        "custom",
        "--registry",
        registry.host,
        "--username",
        registry.username,
        "--password-stdin",
        stdin=registry.password,
    )
    try:
        _merge_into_a_new_file(cli, admin, registry)
        _merge_into_a_file_with_more(cli, admin, registry)
        _merge_where_docker_asks_a_helper(cli, admin, registry)
        events = cli.json(admin, "audit", "--action", "credential.read_secret")["items"]
        assert sum(e["object_id"] == made["id"] for e in events) == 3
    finally:
        cli.ok(admin, "credential", "delete", made["id"])


def _merge_into_a_new_file(cli: Cli, admin: User, registry: Registry) -> None:
    config = admin.home / "new" / ".docker" / "config.json"
    out = cli.ok(admin, "credential", "config", "local-reg", "--merge-into", str(config), umask=0)
    assert out.stdout == f"added {registry.host} in {config}\n"
    assert out.err == b""
    # Owner-only, whatever the umask: the file holds a password.
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert config.read_text().startswith('{\n\t"auths": {\n')  # as docker writes it
    registry.assert_accepts(config)


def _merge_into_a_file_with_more(cli: Cli, admin: User, registry: Registry) -> None:
    config = admin.home / "ci" / "config.json"
    config.parent.mkdir(parents=True)
    before = {
        "auths": {
            "other.example.com": {"auth": base64.b64encode(b"o:other-pw").decode()},
            registry.host: {"auth": base64.b64encode(b"alice:stale-pw").decode()},
        },
        "HttpHeaders": {"User-Agent": "ci"},
        "psFormat": "table {{.ID}}",
    }
    config.write_text(json.dumps(before))
    config.chmod(0o640)
    out = cli.ok(admin, "credential", "config", "local-reg", "--merge-into", str(config))
    assert out.stdout == f"replaced {registry.host} in {config}\n"
    after = json.loads(config.read_text())
    assert list(after) == ["auths", "HttpHeaders", "psFormat"]
    assert after["auths"]["other.example.com"] == before["auths"]["other.example.com"]
    assert after["HttpHeaders"] == before["HttpHeaders"]
    assert after["psFormat"] == before["psFormat"]
    assert after["auths"][registry.host]["username"] == registry.username
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert [p.name for p in config.parent.iterdir()] == ["config.json"]  # no temporary left
    registry.assert_accepts(config)

    # Not a docker config: refused, and the file left as it was.
    config.write_text("[1, 2]")
    line = cli.fails(admin, "credential", "config", "local-reg", "--merge-into", str(config))
    assert line == (
        f"error: {config}: is not a JSON object, so it is not a docker config.json; "
        "nothing was written"
    )
    assert config.read_text() == "[1, 2]"


def _merge_where_docker_asks_a_helper(cli: Cli, admin: User, registry: Registry) -> None:
    config = admin.home / "helpers" / "config.json"
    config.parent.mkdir(parents=True)
    before = {"credsStore": "desktop", "credHelpers": {"gcr.io": "gcloud"}}
    config.write_text(json.dumps(before))
    out = cli.ok(admin, "credential", "config", "local-reg", "--merge-into", str(config))
    assert out.stderr == (
        f"warning: {config} has docker ask docker-credential-desktop for {registry.host}, "
        "not this entry: for docker to use this login, take that helper out of the file\n"
    )
    after = json.loads(config.read_text())
    assert (after["credsStore"], after["credHelpers"]) == ("desktop", {"gcr.io": "gcloud"})
    assert list(after["auths"]) == [registry.host]


def test_credential_config_merge_is_for_those_who_may_read_the_secret(world: World) -> None:
    cli, admin = world.cli, world.admin
    cli.ok(admin, "user", "create", "dora", "--password-stdin", stdin=BOB_PASSWORD)
    cli.ok(admin, "project", "member", "set", "dora", "member", "--project", "team-a")
    dora = cli.user("dora")
    cli.login(dora, BOB_PASSWORD)
    config = dora.home / ".docker" / "config.json"
    line = cli.fails(dora, "credential", "config", "quay-ro", "--merge-into", str(config))
    assert line.startswith("error: only an admin or the owner of the credential's project")
    assert not config.exists()


def test_a_rename_where_the_cluster_cannot_be_asked_still_renames(world: World) -> None:
    """Which workloads still name the old Secret needs the cluster; without it the rename
    stands and the warning says what could not be checked."""
    cli, admin = world.cli, world.admin
    made = cli.json(
        admin,
        *("credential", "create", "to-rename", "--cluster", "prod", "--scope", "namespace"),
        *("-n", "tools", "--provider", "quay", "--username", "r", "--password-stdin"),
        stdin=HUB_PASSWORD,
    )
    try:
        out = cli.ok(admin, "credential", "edit", "to-rename", "--name", "renamed")
        assert out.stdout == "credential renamed updated\n"
        assert out.stderr.startswith(
            "warning: could not check which workloads still name the Secret to-rename: "
            "cluster 'prod' cannot be reached"
        ), out.describe()
        assert len(out.stderr.splitlines()) == 1
        assert cli.json(admin, "credential", "show", made["id"])["name"] == "renamed"
    finally:
        cli.ok(admin, "credential", "delete", made["id"])
