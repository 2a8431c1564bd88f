"""`pullkeeper node manifests`: the objects that run the node agent on every node (the
host directories mounted per runtime, each once; the agent's arguments; names and RBAC), and
the command's output and refusals."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

import pullkeeper
from pullkeeper.cli import node as node_cli
from pullkeeper.cli.node_manifests import DEFAULT_IMAGE
from pullkeeper.core import node_manifests as nm
from pullkeeper.services.node_files import RUNTIMES, Layout
from tests.registry import pki
from tests.tools import pullkeeper_executable

LAYOUT = Layout()
PATHS = nm.HostPaths(
    containerd_config=LAYOUT.containerd_config,
    containerd_hosts=LAYOUT.containerd_hosts,
    containers=LAYOUT.containers,
    docker=LAYOUT.docker,
    rke2=LAYOUT.rke2,
    kubelet_root_dir=LAYOUT.kubelet_root_dir,
    state=LAYOUT.state,
)
BASE = nm.Options(
    image="registry.example.com/pullkeeper:test",
    server="https://pk.example.com",
    cluster="prod",
    paths=PATHS,
)
STATE = ("/var/lib/pullkeeper/node", "DirectoryOrCreate")

# `pullkeeper node agent`'s command line: each flag, and whether it takes a value.
AGENT_FLAGS = {
    "--server": True,
    "--token-file": True,
    "--cluster": True,
    "--node-name": True,
    "--ca-file": True,
    "--runtime": True,
    "--root": True,
    "--containerd-config": True,
    "--containerd-hosts-dir": True,
    "--kubelet-root-dir": True,
    "--state-dir": True,
    "--interval": True,
    "--take-over": False,
}
AGENT_REQUIRED = ("--server", "--token-file", "--cluster")  # --node-name: NODE_NAME


def _agent_flags() -> dict[str, bool]:
    """The agent's flags: from the command itself where this tree has it, else as specified."""
    command = node_cli.node.commands.get("agent")
    if command is None:
        return AGENT_FLAGS
    return {
        flag: not p.is_flag
        for p in command.params
        if isinstance(p, click.Option)
        for flag in p.opts
        if flag.startswith("--")
    }


def _daemonset(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    return ds


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _daemonset(docs)["spec"]["template"]["spec"]["containers"]
    return container


def _host_mounts(docs: list[dict[str, Any]]) -> dict[str, str]:
    """hostPath -> type, each also checked to be mounted at /host + its path."""
    spec = _daemonset(docs)["spec"]["template"]["spec"]
    at = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    out = {}
    for volume in spec["volumes"]:
        if "hostPath" in volume:
            path = volume["hostPath"]["path"]
            assert at[volume["name"]] == "/host" + path, volume
            assert path not in out, f"{path} mounted twice"
            out[path] = volume["hostPath"]["type"]
    return out


def _parsed(args: Sequence[str]) -> dict[str, list[str]]:
    """The agent's arguments as flag -> values, every flag one the agent has."""
    flags = _agent_flags()
    assert list(args[:2]) == ["node", "agent"]
    out: dict[str, list[str]] = {}
    rest = list(args[2:])
    while rest:
        flag = rest.pop(0)
        assert flag in flags, f"{flag} is not a flag of `pullkeeper node agent`"
        out.setdefault(flag, []).append(rest.pop(0) if flags[flag] else "")
    return out


@pytest.mark.parametrize(
    ("runtimes", "expected"),
    [
        (("containerd",), {"/etc/containerd": "DirectoryOrCreate"}),
        (("containers",), {"/etc/containers": "DirectoryOrCreate"}),
        (("docker",), {"/etc/docker": "DirectoryOrCreate"}),
        (("rke2",), {"/etc/rancher/rke2": "DirectoryOrCreate"}),
        (("kubelet",), {"/var/lib/kubelet": "Directory"}),
        (
            ("containerd", "kubelet"),
            {"/etc/containerd": "DirectoryOrCreate", "/var/lib/kubelet": "Directory"},
        ),
        (
            tuple(RUNTIMES),
            {
                "/etc/containerd": "DirectoryOrCreate",
                "/etc/containers": "DirectoryOrCreate",
                "/etc/docker": "DirectoryOrCreate",
                "/etc/rancher/rke2": "DirectoryOrCreate",
                "/var/lib/kubelet": "Directory",
            },
        ),
    ],
)
def test_only_the_runtimes_directories_and_the_state_are_mounted(
    runtimes: tuple[str, ...], expected: dict[str, str]
) -> None:
    docs = nm.manifests(replace(BASE, runtimes=runtimes))
    assert _host_mounts(docs) == {**expected, STATE[0]: STATE[1]}
    assert _parsed(_container(docs)["args"])["--runtime"] == list(runtimes)


def test_a_directory_inside_another_is_mounted_once() -> None:
    paths = replace(
        PATHS,
        containerd_hosts="/etc/registry/hosts",  # outside config.toml's directory: its own
        state="/var/lib/kubelet/pullkeeper",  # inside the kubelet's: through its mount
    )
    docs = nm.manifests(replace(BASE, paths=paths))
    assert _host_mounts(docs) == {
        "/etc/containerd": "DirectoryOrCreate",
        "/etc/registry/hosts": "DirectoryOrCreate",
        "/var/lib/kubelet": "Directory",
    }
    # One directory named twice: once, as the one that must exist.
    same = replace(PATHS, state="/var/lib/kubelet/", kubelet_root_dir="/var/lib/kubelet")
    twice = nm.manifests(replace(BASE, paths=same, runtimes=("kubelet", "kubelet")))
    assert _host_mounts(twice) == {"/var/lib/kubelet": "Directory"}
    assert _parsed(_container(twice)["args"])["--runtime"] == ["kubelet"]
    spec = _daemonset(twice)["spec"]["template"]["spec"]
    names = [v["name"] for v in spec["volumes"]]
    assert len(names) == len(set(names))


def test_the_agents_arguments_are_its_flags_and_match_the_mounts(tmp_path: Path) -> None:
    ca = pki.certificate_authority(tmp_path / "ca", "pullkeeper test CA").cert_pem.decode()
    paths = replace(PATHS, containerd_config="/opt/ctr/config.toml", kubelet_root_dir="/data/k")
    options = replace(BASE, server_ca=ca, interval=30, take_over=True, paths=paths)
    docs = nm.manifests(options)
    container = _container(docs)
    args = _parsed(container["args"])
    assert set(AGENT_REQUIRED) <= set(args)
    assert {k: v for k, v in args.items() if k != "--runtime"} == {
        "--server": ["https://pk.example.com"],
        "--token-file": ["/var/run/secrets/pullkeeper/node-token/token"],
        "--cluster": ["prod"],
        "--ca-file": ["/etc/pullkeeper/server-ca/ca.crt"],
        "--root": ["/host"],
        "--containerd-config": ["/opt/ctr/config.toml"],
        "--containerd-hosts-dir": ["/etc/containerd/certs.d"],
        "--kubelet-root-dir": ["/data/k"],
        "--state-dir": ["/var/lib/pullkeeper/node"],
        "--interval": ["30"],
        "--take-over": [""],
    }
    # The files the flags name are where the pod mounts them.
    spec = _daemonset(docs)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    token_dir, _, token_key = args["--token-file"][0].rpartition("/")
    assert mounts[token_dir]["readOnly"] is True
    token = volumes[mounts[token_dir]["name"]]["secret"]
    assert token["secretName"] == "pullkeeper-node-token"
    assert token["items"] == [{"key": "token", "path": token_key}]
    ca_dir, _, ca_key = args["--ca-file"][0].rpartition("/")
    ca_map = volumes[mounts[ca_dir]["name"]]["configMap"]
    assert ca_map["items"] == [{"key": "ca.crt", "path": ca_key}]
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == ca_map["name"]
    assert config_map["data"]["ca.crt"] == ca
    assert _host_mounts(docs) == {
        "/opt/ctr": "DirectoryOrCreate",
        "/etc/containerd/certs.d": "DirectoryOrCreate",
        "/data/k": "Directory",
        STATE[0]: STATE[1],
    }
    assert container["env"] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]


def test_without_a_ca_there_is_no_config_map_and_no_server_ca() -> None:
    docs = nm.manifests(BASE)
    assert [d["kind"] for d in docs] == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
    ]
    args = _parsed(_container(docs)["args"])
    assert "--ca-file" not in args and "--interval" not in args and "--take-over" not in args
    spec = _daemonset(docs)["spec"]["template"]["spec"]
    assert not [v for v in spec["volumes"] if "configMap" in v]


def test_names_namespace_and_the_minimal_rbac() -> None:
    docs = nm.manifests(
        replace(BASE, namespace="infra", name="agent-b", token_secret="nodes.token")
    )
    by_kind = {d["kind"]: d for d in docs}
    account = by_kind["ServiceAccount"]["metadata"]
    assert (account["namespace"], account["name"]) == ("infra", "agent-b")
    role, binding = by_kind["ClusterRole"], by_kind["ClusterRoleBinding"]
    assert "namespace" not in role["metadata"] and "namespace" not in binding["metadata"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "agent-b", "namespace": "infra"}
    ]
    ds = by_kind["DaemonSet"]
    assert ds["metadata"]["namespace"] == "infra"
    pod = ds["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "agent-b"
    selector = ds["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    token = [v for v in pod["spec"]["volumes"] if "secret" in v]
    assert [v["secret"]["secretName"] for v in token] == ["nodes.token"]


def test_the_pod_runs_everywhere_as_root_with_nothing_more() -> None:
    spec = _daemonset(nm.manifests(BASE))["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "10%"},
    }
    pod = spec["template"]["spec"]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    security = pod["containers"][0]["securityContext"]
    assert security["runAsUser"] == 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in security
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    unprioritized = _daemonset(nm.manifests(replace(BASE, priority_class="")))
    assert "priorityClassName" not in unprioritized["spec"]["template"]["spec"]


def test_the_runtimes_and_their_default_are_the_node_commands() -> None:
    assert nm.RUNTIMES == RUNTIMES
    (runtime,) = [p for p in node_cli.node.commands["apply"].params if p.name == "runtimes"]
    assert tuple(runtime.default) == nm.DEFAULT_RUNTIMES


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"server": "ftp://pk.example.com"}, "server"),
        ({"server": "pk.example.com"}, "server"),
        ({"server": "https://user:pw@pk.example.com"}, "server"),
        ({"cluster": ""}, "cluster"),
        ({"namespace": "Infra"}, "namespace"),
        ({"token_secret": "no_underscores"}, "token-secret"),
        ({"server_ca": "not a certificate"}, "ca-file"),
        ({"interval": 4}, "interval"),
        ({"runtimes": ()}, "runtime"),
        ({"runtimes": ("crio",)}, "runtime"),
        ({"paths": replace(PATHS, state="var/lib/pk")}, "state-dir"),
        ({"paths": replace(PATHS, kubelet_root_dir="/var/../")}, "kubelet-root-dir"),
        ({"paths": replace(PATHS, containerd_config="/config.toml")}, "containerd-config"),
    ],
)
def test_bad_options_are_named(change: dict[str, Any], option: str) -> None:
    with pytest.raises(nm.ManifestError) as raised:
        nm.manifests(replace(BASE, **change))
    assert raised.value.option == option


# --------------------------------------------------------------------------- the command


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [pullkeeper_executable(), "node", "manifests", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(pullkeeper.__file__).parents[1])},
    )


def test_the_command_prints_yaml_documents_or_a_json_list(tmp_path: Path) -> None:
    ca = pki.certificate_authority(tmp_path / "ca", "pullkeeper test CA")
    common = ["--server", "https://pk.example.com", "--cluster", "prod"]
    printed = _run(*common, "--ca-file", str(ca.cert_file), "--runtime", "docker")
    assert printed.returncode == 0, printed.stderr
    docs = list(yaml.safe_load_all(printed.stdout))
    assert [d["kind"] for d in docs] == [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ]
    assert docs[3]["data"]["ca.crt"] == ca.cert_pem.decode()
    assert "ca.crt: |" in printed.stdout  # the PEM readable as it is
    assert _container(docs)["image"] == DEFAULT_IMAGE
    assert DEFAULT_IMAGE.endswith(f":{pullkeeper.__version__}")  # this version's image
    assert _host_mounts(docs) == {"/etc/docker": "DirectoryOrCreate", STATE[0]: STATE[1]}
    as_json = _run(*common, "-n", "infra", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List"
    assert _daemonset(listed["items"])["metadata"]["namespace"] == "infra"
    assert _host_mounts(listed["items"]) == {
        "/etc/containerd": "DirectoryOrCreate",
        "/var/lib/kubelet": "Directory",
        STATE[0]: STATE[1],
    }


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--server", "pk.example.com:8443"], "error: --server: 'pk.example.com:8443' is not"),
        (["--interval", "2"], "error: --interval: 2 is too short: at least 5 seconds"),
        (["--ca-file", "{not_pem}"], "error: --ca-file: is not a PEM certificate"),
        (["--ca-file", "{missing}"], "cannot be read (FileNotFoundError)"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    tmp_path: Path, args: list[str], says: str
) -> None:
    (tmp_path / "not.pem").write_text("just text\n")
    given = {"--server": "https://pk.example.com", "--cluster": "prod"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        given[flag] = value.format(not_pem=tmp_path / "not.pem", missing=tmp_path / "missing.pem")
    failed = _run(*[part for pair in given.items() for part in pair])
    assert failed.returncode == 2, failed.stderr
    assert failed.stdout == ""
    assert failed.stderr.startswith("error: --") and says in failed.stderr, failed.stderr
    assert len(failed.stderr.splitlines()) == 1, failed.stderr
