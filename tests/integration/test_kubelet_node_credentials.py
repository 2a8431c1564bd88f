"""`pullkeeper kubelet-credential-provider --server`: the kubelet's own provider code runs it
against a real `pullkeeper serve`, with a node token an admin issued with the CLI; the
answers hold the cluster's credentials of cluster scope, never a narrower scope's; a revoked
token, a server that does not answer and a wrong cluster are one line on stderr."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import Kubelet, Result, assert_one_line_error, kubelet_request, pk
from .test_cli_server import (
    ADMIN_TOKEN,
    Cli,
    Server,
    User,
    free_port,
    start_server,
)

pytestmark = pytest.mark.integration

CLUSTER_PASSWORD = "quay-cluster-Pw81&x"
NAMESPACE_PASSWORD = "quay-namespace-Pw27"
PROJECT_PASSWORD = "quay-project-Pw63"
OTHER_PASSWORD = "quay-staging-Pw44"


@dataclass
class Nodes:
    server: Server
    cli: Cli
    admin: User
    token: str  # prod's node token
    token_id: str
    token_file: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("pknodes"))
    try:
        yield s
    finally:
        s.stop()


def credential(cli: Cli, admin: User, name: str, password: str, *options: str) -> None:
    cli.ok(
        admin,
        *("credential", "create", name, "--provider", "quay", "--username", f"{name}-bot"),
        *(*options, "--password-stdin"),
        stdin=password,
    )


@pytest.fixture(scope="module")
def nodes(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Nodes:
    """prod with a quay.io credential in each scope, staging with one; prod's node token."""
    base = tmp_path_factory.mktemp("pknode-users")
    cli = Cli(server, base)
    cli.secrets |= {ADMIN_TOKEN, CLUSTER_PASSWORD, NAMESPACE_PASSWORD, PROJECT_PASSWORD}
    cli.secrets.add(OTHER_PASSWORD)
    admin = cli.user("admin")
    admin.env.update(PULLKEEPER_SERVER=server.url, PULLKEEPER_TOKEN=ADMIN_TOKEN)
    cli.ok(admin, "cluster", "create", "prod")
    cli.ok(admin, "cluster", "create", "staging")
    cli.ok(admin, "project", "create", "team-a", "--cluster", "prod")
    cli.ok(admin, "namespace", "put", "web", "--cluster", "prod", "--project", "team-a")
    credential(cli, admin, "quay", CLUSTER_PASSWORD, "--cluster", "prod", "--scope", "cluster")
    credential(
        cli,
        admin,
        "quay-web",
        NAMESPACE_PASSWORD,
        *("--cluster", "prod", "--scope", "namespace", "-n", "web"),
    )
    credential(
        cli,
        admin,
        "quay-team",
        PROJECT_PASSWORD,
        *("--cluster", "prod", "--scope", "project", "--project", "team-a"),
    )
    credential(cli, admin, "quay", OTHER_PASSWORD, "--cluster", "staging", "--scope", "cluster")
    issued = cli.json(
        admin, "cluster", "node-token", "create", "prod", "--name", "pool-a", reveal=True
    )
    cli.secrets.add(issued["token"])
    token_file = base / "node-token"
    token_file.write_text(issued["token"] + "\n")
    token_file.chmod(0o600)
    return Nodes(server, cli, admin, issued["token"], issued["id"], token_file)


def server_args(
    nodes: Nodes, *, cluster: str = "prod", token_file: Path | None = None
) -> list[str]:
    return [
        *("--server", nodes.server.url, "--cluster", cluster),
        *("--token-file", str(token_file or nodes.token_file)),
    ]


def provide(nodes: Nodes, image: str, *options: str, **kw: Any) -> Result:
    result = pk(
        "kubelet-credential-provider",
        *server_args(nodes, **kw),
        *options,
        stdin=kubelet_request(image),
    )
    said = result.stderr
    assert nodes.token not in result.stdout + said
    for secret in (NAMESPACE_PASSWORD, PROJECT_PASSWORD, OTHER_PASSWORD):
        assert secret not in result.stdout + said
    return result


def failed(result: Result) -> str:
    line = assert_one_line_error(result, 1)
    assert result.out == b"", result.describe()
    assert CLUSTER_PASSWORD not in result.stderr
    return line


def test_the_kubelet_pulls_with_the_clusters_credential_of_cluster_scope(
    nodes: Nodes, kubelet: Kubelet
) -> None:
    kubelet.install(*server_args(nodes), match_images=["quay.io", "gcr.io"])
    found, result = kubelet.lookup("quay.io/team-a/web", "quay.io/other", "gcr.io/p/app")
    assert found == {
        # Not the namespace's or the project's: a node has neither.
        "quay.io/team-a/web": [("quay-bot", CLUSTER_PASSWORD)],
        "quay.io/other": [("quay-bot", CLUSTER_PASSWORD)],  # from the answer cached for quay.io
        "gcr.io/p/app": [],
    }
    assert kubelet.runs == 2
    assert nodes.token not in result.stdout + result.stderr

    answered = provide(nodes, "quay.io/team-a/web")
    assert answered.returncode == 0 and answered.err == b"", answered.describe()
    assert json.loads(answered.stdout) == {
        "kind": "CredentialProviderResponse",
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "cacheKeyType": "Registry",
        "cacheDuration": "5m0s",
        "auth": {"quay.io": {"username": "quay-bot", "password": CLUSTER_PASSWORD}},
    }
    # Each read of a password is in the audit trail, as the node token's.
    events = nodes.cli.json(
        nodes.admin, "audit", "--action", "credential.read_secret", "--limit", "100"
    )
    actors = {e["actor"] for e in events["items"]}
    assert actors == {f"node-token:{nodes.token_id}"}


def test_the_node_token_does_nothing_else(nodes: Nodes) -> None:
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{nodes.server.url}/api/v1/clusters",
        headers={"Authorization": f"Bearer {nodes.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert refused.value.code == 403
    assert (
        "a node token only reads its cluster's node credentials"
        in json.loads(refused.value.read())["error"]["message"]
    )
    # The CLI with the node token as its API token: refused, one line.
    node_user = nodes.cli.user("node")
    node_user.env.update(PULLKEEPER_SERVER=nodes.server.url, PULLKEEPER_TOKEN=nodes.token)
    line = nodes.cli.fails(node_user, "cluster", "list")
    assert "a node token only reads its cluster's node credentials" in line


def test_another_clusters_name_is_refused(nodes: Nodes) -> None:
    line = failed(provide(nodes, "quay.io/a", cluster="staging"))
    assert line == (
        f"error: {nodes.server.url} answered HTTP 403: this node token is for cluster 'prod', "
        "not 'staging': give --cluster its own cluster, or a token of that cluster"
    )


def test_a_server_that_does_not_answer(nodes: Nodes, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = pk(
        "kubelet-credential-provider",
        *("--server", url, "--cluster", "prod", "--token-file", str(nodes.token_file)),
        stdin=kubelet_request("quay.io/a"),
    )
    line = failed(result)
    assert line == (
        f"error: cannot connect to {url}: connection refused (is the server running?); the "
        "kubelet asks again at the next pull"
    )
    absent = failed(provide(nodes, "quay.io/a", token_file=tmp_path / "absent"))
    assert absent.startswith(f"error: {tmp_path / 'absent'}: cannot read: No such file")


def test_a_revoked_node_token_is_refused(nodes: Nodes, tmp_path: Path) -> None:
    cli, admin = nodes.cli, nodes.admin
    issued = cli.json(admin, "cluster", "node-token", "create", "prod", reveal=True)
    cli.secrets.add(issued["token"])
    token_file = tmp_path / "token"
    token_file.write_text(issued["token"])
    assert provide(nodes, "quay.io/a", token_file=token_file).returncode == 0
    listed = cli.ok(admin, "cluster", "node-token", "list", "prod").stdout
    assert issued["id"] in listed and "pool-a" in listed
    said = cli.ok(admin, "cluster", "node-token", "revoke", "prod", issued["id"]).stdout
    assert said == f"node token {issued['id']} of cluster prod revoked\n"
    line = failed(provide(nodes, "quay.io/a", token_file=token_file))
    assert line == (
        f"error: {nodes.server.url} refused the node token (the API token is not valid; log in "
        "again): issue a new one with `pullkeeper cluster node-token create` and put it in the "
        "--token-file"
    )
    revoked = [
        t
        for t in cli.json(admin, "cluster", "node-token", "list", "prod")["items"]
        if t["id"] == issued["id"]
    ]
    assert revoked[0]["revoked"] is True
