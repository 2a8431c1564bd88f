"""Every ```console example in the README and docs/ is run, or says why it cannot be.

tests/docs/examples.py finds the blocks and compares what each command prints with what the
page shows. Each session below is the environment a page's story needs; the blocks of one
page and session run in the page's order, in one environment, so a file or an object an
earlier block made is there for the next.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.docs.examples import (
    ROOT,
    Block,
    Command,
    Shell,
    differences,
    every_block,
    rewrite,
    shell_env,
)
from tests.kube.real import SCRIPT, RealCluster
from tests.registry import pki
from tests.registry.servers import PlainRegistry, TokenRegistry
from tests.server_ops import ADMIN_TOKEN, Serve, client, ok

BLOCKS = every_block()


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _config(auths: dict[str, dict[str, str]]) -> str:
    return json.dumps({"auths": auths}, indent=2) + "\n"


def offline(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """The tools that need no server: the files the examples of docs/cli.md name."""
    home = tmp / "home"
    home.mkdir()
    work = tmp / "work"
    work.mkdir()
    shell = Shell(work, shell_env(home), {"/home/me": str(home)})
    shell.run(
        "printf 's3cr&t' | pullkeeper secret create docker-registry regcred "
        "--docker-server quay.io --docker-username alice --password-stdin > regcred.yaml"
    )
    shell.run(
        "printf 's3cr&t' | pullkeeper secret create docker-registry corp "
        "--docker-server registry.corp.example --docker-username alice --password-stdin "
        "> corp.yaml"
    )
    files = {
        "hub.json": _config({"https://index.docker.io/v1/": _auth("bob", "hunter2")}),
        "node-config.json": _config(
            {"*.quay.io": _auth("wild", "w1ld"), "https://quay.io/v2/team-a": _auth("team", "t")}
        ),
        "bad.json": _config({"quay.io": {"auth": base64.b64encode(b"nocolon").decode()}}),
        "request.json": json.dumps(
            {
                "kind": "CredentialProviderRequest",
                "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
                "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app",
            }
        ),
        "bad.yaml": "provider: ecr\nserver: 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n"
        "access_key_id: AKIAIOSFODNN7EXAMPLE\nsecret_access_key: not-here\n",
    }
    ca = pki.certificate_authority(tmp / "mirror-ca", "mirror.corp.example").cert_pem.decode()
    files["profile.yaml"] = json.dumps(
        {
            "registries": [
                {
                    "host": "docker.io",
                    "mirrors": [
                        "https://mirror.corp.example:5000",
                        {"url": "https://art.corp.example/v2/hub", "override_path": True},
                    ],
                },
                {"host": "mirror.corp.example:5000", "ca": ca},
                {"host": "lab.corp.example:5000", "insecure": "http"},
            ],
            "logins": {
                "https://index.docker.io/v1/": {"username": "hub", "password": "h"},
                "registry.corp.example": {"username": "robot", "password": "r"},
            },
        },
        indent=2,
    )
    for name, text in files.items():
        (work / name).write_text(text)
    return shell


def registries(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """docs/cli.md's `check` and `manifest`: a registry with token auth over self-signed TLS
    (alice may pull team-a/*, bob team-b/* only) and a plain-HTTP one without auth."""
    tokens: TokenRegistry = request.getfixturevalue("token_registry")
    plain: PlainRegistry = request.getfixturevalue("plain_registry")
    shell = offline(tmp, request)
    alice, bob = tokens.alice, tokens.bob
    files = {
        "alice.json": _config({tokens.host: _auth(alice.username, alice.password)}),
        "bob.json": _config({tokens.host: _auth(bob.username, bob.password)}),
        "old-config.json": _config({tokens.host: _auth(alice.username, "an-old-password")}),
        "ca.crt": Path(str(tokens.ca_file)).read_text(),
    }
    files["mirrored.yaml"] = json.dumps(
        {
            "registries": [
                {
                    "host": tokens.host,
                    "mirrors": ["http://127.0.0.1:41627"],
                    "ca": files["ca.crt"],
                },
                {"host": "127.0.0.1:41627", "insecure": "http"},
            ],
            "logins": {tokens.host: {"username": alice.username, "password": alice.password}},
        }
    )
    for name, text in files.items():
        (shell.cwd / name).write_text(text)
    shell.subs.update({"127.0.0.1:46403": tokens.host, "127.0.0.1:5000": plain.host})
    return shell


SERVER_SECRETS = {
    "QUAY_TOKEN": "q-Xy7-robot-token",
    "HUB_TOKEN": "hub-token-of-acme",
    "GHCR_TOKEN": "ghcr-token-of-bbot",
    "MIRROR_TOKEN": "mirror-token-of-puller",
    "ALICE_PW": "alice-has-a-long-password",
    "BOB_PW": "bob-has-a-long-password",
    "NEW_PW": "bob-has-a-new-long-password",
    "CI_TOKEN": "pk_a-token-for-ci-that-no-server-knows",
}

# Another user's edit while `cluster edit` waits for its editor (docs/server.md).
CONCURRENT_EDITOR = """#!/bin/sh
pullkeeper cluster edit prod --description "Production, changed meanwhile" > /dev/null
sed -i 's/^description: .*/description: Production cluster/' "$1"
"""


def server(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """docs/server.md's story: a `pullkeeper serve` of its own (the sync off: the clusters
    it registers are not there), the admin logged in before each block, and alice, whom
    the page takes as existing, made first."""
    serve = Serve(tmp / "data", env={"PULLKEEPER_SYNC": "false"})
    serve.start()
    request.addfinalizer(serve.stop)
    home = tmp / "home"
    home.mkdir()
    (tmp / "alice").mkdir()
    admin_pw = (serve.data / "initial-admin-password").read_text().strip()
    env = shell_env(home, ADMIN_PW=admin_pw, **SERVER_SECRETS)
    editor = tmp / "concurrent-editor"
    editor.write_text(CONCURRENT_EDITOR)
    editor.chmod(0o755)
    env["EDITOR"] = str(editor)
    silent = _silent_port(request)
    shell = Shell(
        tmp,
        env,
        {
            "http://127.0.0.1:18181": serve.url,
            "http://127.0.0.1:18198": f"http://127.0.0.1:{silent}",
            "/home/me": str(home),
            "/home/alice": str(tmp / "alice"),
        },
        prepare=_logged_in_as_admin,
    )
    with client(serve.url) as api:
        ok(
            api.post("/users", json={"username": "alice", "password": SERVER_SECRETS["ALICE_PW"]}),
            201,
        )
    return shell


def _logged_in_as_admin(shell: Shell, block: Block) -> None:
    if "pullkeeper login" in block.commands[0].text:
        return
    if not (Path(shell.env["HOME"]) / ".config" / "pullkeeper" / "session.json").exists():
        status = shell.status
        url = shell.subs["http://127.0.0.1:18181"]
        shell.run(f'printf "%s\\n" "$ADMIN_PW" | pullkeeper login {url} -u admin --password-stdin')
        shell.status = status


def _silent_port(request: pytest.FixtureRequest) -> int:
    """A port that accepts connections and never answers (for PULLKEEPER_TIMEOUT)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    request.addfinalizer(listener.close)
    port: int = listener.getsockname()[1]
    return port


def quickstart(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """The README's and docs/quickstart.md's ten minutes, on the real Kubernetes API server:
    its kubeconfig in ~/.kube/config under the context prod-admin, a namespace web, and
    `pullkeeper serve` with its data in ./.pullkeeper, as ./scripts/serve runs it."""
    cluster: RealCluster = request.getfixturevalue("real_kube")
    home, work = tmp / "home", tmp / "work"
    work.mkdir()
    kubeconfig = cluster.kubeconfig(home / ".kube" / "config")
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["contexts"][0]["name"] = doc["current-context"] = "prod-admin"
    kubeconfig.write_text(yaml.safe_dump(doc))
    cluster.create("namespaces", {"metadata": {"name": "web"}})
    serve = Serve(work / ".pullkeeper")
    serve.start()
    request.addfinalizer(serve.stop)
    env = shell_env(home, QUAY_TOKEN=SERVER_SECRETS["QUAY_TOKEN"])
    subs = {"http://127.0.0.1:8080": serve.url, "/home/me": str(home)}
    return Shell(work, env, subs, prepare=_delivered)


def _delivered(shell: Shell, block: Block) -> None:
    """A block that looks at delivered Secrets waits for the sync to write them."""
    if any(word in block.commands[0].text for word in ("credential status", "render")):
        shell.until_shown(block)


def delivery(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """docs/kubernetes.md's delivery: on the real API server, namespaces cart and shop of the
    project web, tools (holding a Secret ci-pull of its own) and default; a project
    credential web-pull, a cluster one ci-pull, and the ServiceAccount mode on for web."""
    cluster: RealCluster = request.getfixturevalue("real_kube")
    home, work = tmp / "home", tmp / "work"
    work.mkdir()
    kubeconfig = cluster.kubeconfig(tmp / "kubeconfig")
    for name in ("cart", "shop", "tools"):
        labels = {"pullkeeper.io/project": "web"} if name != "tools" else {}
        cluster.create("namespaces", {"metadata": {"name": name, "labels": labels}})
    hand_made = {"metadata": {"name": "ci-pull"}, "stringData": {"note": "made by hand"}}
    cluster.create("secrets", hand_made, namespace="tools")
    serve = Serve(work / "data")
    serve.start()
    request.addfinalizer(serve.stop)
    env = shell_env(
        home, PULLKEEPER_SERVER=serve.url, PULLKEEPER_TOKEN=ADMIN_TOKEN, WEB_PW="s3cret-token"
    )
    shell = Shell(work, env, prepare=_delivered)
    for command in (
        f"pullkeeper cluster create prod --kubeconfig {kubeconfig} --context test",
        "pullkeeper project create web --cluster prod",
        "pullkeeper policy set --project web --service-accounts default",
        'printf "%s\\n" "$WEB_PW" | pullkeeper credential create web-pull --cluster prod '
        "--scope project --project web --provider quay --username acme+robot --password-stdin",
        'printf "another-secret\\n" | pullkeeper credential create ci-pull --cluster prod '
        "--scope cluster --provider custom --registry registry.example.com:5000 --username ci "
        "--password-stdin",
    ):
        output = shell.run(command)
        assert shell.status == 0, f"$ {command}\n{output}"
    return shell


def helm(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """docs/operations.md's chart, from the repository's root: Helm as scripts/kube built it,
    on the real Kubernetes API server."""
    request.getfixturevalue("helm_built")
    cluster: RealCluster = request.getfixturevalue("real_kube")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "helm").write_text(f'#!/bin/sh\nexec "{SCRIPT}" helm "$@"\n')
    (bin_dir / "helm").chmod(0o755)
    cache = os.environ.get("PULLKEEPER_CACHE", str(Path.home() / ".cache" / "pullkeeper"))
    kubeconfig = cluster.kubeconfig(tmp / "kubeconfig")
    env = shell_env(tmp, KUBECONFIG=str(kubeconfig), PULLKEEPER_CACHE=cache)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return Shell(ROOT, env)


def nodes(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """docs/nodes.md's profiles on the server: a cluster prod with two credentials of cluster
    scope, the profile files the page names, and a node token; before the page looks at
    the nodes, two nodes apply their profiles (one finding a file it did not write)."""
    serve = Serve(tmp / "data", env={"PULLKEEPER_SYNC": "false"})
    serve.start()
    request.addfinalizer(serve.stop)
    work = tmp / "work"
    work.mkdir()
    env = shell_env(tmp, PULLKEEPER_SERVER=serve.url, PULLKEEPER_TOKEN=ADMIN_TOKEN)
    shell = Shell(work, env, prepare=_nodes_reported)
    ca = pki.certificate_authority(tmp / "corp-ca", "Corp Registry CA").cert_pem.decode()
    corp = {"host": "registry.corp.example:5000", "ca": ca}
    lab = {"host": "lab.corp.example", "insecure": "http"}
    (work / "registries.yaml").write_text(yaml.safe_dump({"registries": [corp, lab]}))
    (work / "gpu.yaml").write_text(yaml.safe_dump({"registries": [corp]}))
    for command in (
        "pullkeeper cluster create prod --kubeconfig /etc/pullkeeper/prod.yaml",
        "echo robot-token | pullkeeper credential create quay-ro --cluster prod "
        "--scope cluster --provider quay --username team+robot --password-stdin",
        "echo ecr-token | pullkeeper credential create ecr-ml --cluster prod --scope cluster "
        "--provider ecr --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com "
        "--username AWS --password-stdin",
        "pullkeeper cluster node-token create prod --name nodes -o json "
        "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])' > ../node-token",
    ):
        output = shell.run(command)
        assert shell.status == 0, f"$ {command}\n{output}"
    return shell


def _nodes_reported(shell: Shell, block: Block) -> None:
    if "node status" not in block.commands[0].text:
        return
    status = shell.status
    theirs = shell.cwd.parent / "web-3/etc/containerd/certs.d/lab.corp.example/hosts.toml"
    theirs.parent.mkdir(parents=True)
    theirs.write_text('server = "http://lab.corp.example"\n')
    for node, labels in (("gpu-1", "pool=gpu"), ("web-3", "pool=web")):
        shell.run(
            f"pullkeeper node apply --server $PULLKEEPER_SERVER --token-file ../node-token "
            f"--cluster prod --node-name {node} --node-labels {labels} --root ../{node}"
        )
    shell.status = status


def provider_server(tmp: Path, request: pytest.FixtureRequest) -> Shell:
    """docs/cli.md's provider asking a server: the server's own story, with a node token file
    the server does not know and the kubelet's request."""
    shell = server(tmp, request)
    # This page names the server so; one page name per address, or the output cannot say.
    shell.subs["https://pk.example.com"] = shell.subs.pop("http://127.0.0.1:18181")
    shell.prepare = None
    (shell.cwd / "node-token").write_text("pk_a-node-token-that-was-revoked\n")
    request_json = {
        "kind": "CredentialProviderRequest",
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "image": "quay.io/team-a/app",
    }
    (shell.cwd / "request.json").write_text(json.dumps(request_json))
    return shell


SESSIONS: dict[str, Callable[[Path, pytest.FixtureRequest], Shell]] = {
    "offline": offline,
    "registries": registries,
    "server": server,
    "quickstart": quickstart,
    "delivery": delivery,
    "helm": helm,
    "nodes": nodes,
    "provider-server": provider_server,
}


def _runs() -> list[tuple[str, str]]:
    runs: list[tuple[str, str]] = []
    for block in BLOCKS:
        key = (str(block.page.relative_to(ROOT)), block.session or "")
        if block.session and key not in runs:
            runs.append(key)
    return runs


def test_every_console_block_is_run_or_says_why_not() -> None:
    unmarked = [b.where for b in BLOCKS if b.session is None and not b.why]
    assert not unmarked, (
        "mark each console block with <!-- run: SESSION --> or <!-- not run: WHY --> on the "
        "line before it:\n" + "\n".join(unmarked)
    )
    unknown = [f"{b.where}: {b.session}" for b in BLOCKS if b.session and b.session not in SESSIONS]
    assert not unknown, "no such session in tests/docs/test_examples.py:\n" + "\n".join(unknown)
    empty = [b.where for b in BLOCKS if b.session and not any(c.text for c in b.commands)]
    assert not empty, "a block to run has no command:\n" + "\n".join(empty)


@pytest.fixture
def session_shell(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Shell]]:
    def make(name: str) -> Shell:
        return SESSIONS[name](tmp_path, request)

    yield make


@pytest.mark.parametrize(("page", "session"), _runs(), ids=str)
def test_the_examples_print_what_the_page_shows(
    page: str, session: str, session_shell: Callable[[str], Shell]
) -> None:
    shell = session_shell(session)
    failures = []
    fixes: list[tuple[Command, int, str]] = []
    for block in [b for b in BLOCKS if str(b.page.relative_to(ROOT)) == page]:
        if block.session != session:
            continue
        shell.write_shown_files(block)
        if shell.prepare:
            shell.prepare(shell, block)
        for command in block.commands:
            raw = shell.run(command.text)
            shell.learn(command.expected, raw)
            output = shell.as_page(raw)
            wrong = differences(command.expected, output)
            if wrong:
                failures.append(f"{page}:{command.line}: $ {command.text}\n{wrong}")
                fixes.append((command, block.indent, output))
    if fixes and os.environ.get("PULLKEEPER_DOCS_UPDATE") == "1":
        rewrite(ROOT / page, fixes)  # then read the diff, and keep only what is right
    assert not failures, "\n\n".join(failures)
