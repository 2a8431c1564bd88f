"""`pullkeeper node manifests | kubectl apply -f -` on a real Kubernetes API server: the
objects are valid for every runtime, stored as printed, and the agent's identity may get a
Node and nothing else.

The control plane runs no DaemonSet controller and no node here, so the agent's pods are never
made: the pod template is admitted on its own (a server-side dry run of a Pod from it)."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

import pullkeeper
from tests.kube.real import RealCluster
from tests.registry import pki
from tests.tools import pullkeeper_executable

NAMESPACE = "pullkeeper"
NAME = "pullkeeper-node-agent"
NODE = "pk-manifests-node"
STATE = "/var/lib/pullkeeper/node"


def _printed(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            pullkeeper_executable(),
            "node",
            "manifests",
            "--server",
            "https://pk.example.com",
            "--cluster",
            "prod",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(pullkeeper.__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _host_paths(daemonset: dict[str, Any]) -> dict[str, str]:
    return {
        v["hostPath"]["path"]: v["hostPath"]["type"]
        for v in daemonset["spec"]["template"]["spec"]["volumes"]
        if "hostPath" in v
    }


def test_applied_stored_and_the_agent_may_get_a_node_and_nothing_else(
    real_kube: RealCluster, tmp_path: Path
) -> None:
    ca = pki.certificate_authority(tmp_path / "ca", "pullkeeper test CA")
    real_kube.create("namespaces", {"metadata": {"name": NAMESPACE}})
    everything = [
        *("--runtime", "containerd", "--runtime", "containers", "--runtime", "docker"),
        *("--runtime", "rke2", "--runtime", "kubelet"),
        *("--ca-file", str(ca.cert_file), "--interval", "30", "--take-over"),
        *("--containerd-hosts-dir", "/etc/registry/hosts"),
    ]
    variants = {
        "default": (),
        "docker": ("--runtime", "docker"),
        "containers, rke2, no priority": (
            *("--runtime", "containers", "--runtime", "rke2", "--priority-class", ""),
        ),
        "everything": tuple(everything),
    }
    printed = {name: _printed(*args) for name, args in variants.items()}
    for name, docs in printed.items():
        dry = real_kube.apply(docs, "--dry-run=server")
        assert dry.stdout.count("(server dry run)") == len(docs), (name, dry.stdout)

    docs = printed["everything"]
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    template = daemonset["spec"]["template"]
    real_kube.kubectl(
        *("-n", NAMESPACE, "create", "secret", "generic", "pullkeeper-node-token"),
        "--from-literal=token=pk_node-token-for-the-test",
    )
    real_kube.apply(docs)
    stored = real_kube.call("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/{NAME}")
    assert stored.status_code == 200, stored.text
    assert _host_paths(stored.json()) == {
        "/etc/containerd": "DirectoryOrCreate",
        "/etc/registry/hosts": "DirectoryOrCreate",
        "/etc/containers": "DirectoryOrCreate",
        "/etc/docker": "DirectoryOrCreate",
        "/etc/rancher/rke2": "DirectoryOrCreate",
        "/var/lib/kubelet": "Directory",
        STATE: "DirectoryOrCreate",
    }
    (container,) = stored.json()["spec"]["template"]["spec"]["containers"]
    assert container["args"] == template["spec"]["containers"][0]["args"]
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/host" + p for p in _host_paths(stored.json())} <= mounted
    config_map = real_kube.get("configmaps", f"{NAME}-server-ca", NAMESPACE)
    assert config_map is not None and config_map["data"]["ca.crt"] == ca.cert_pem.decode()
    binding = real_kube.call(
        "GET", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{NAME}"
    ).json()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]

    # The pod the DaemonSet would make, through the pod admission (its PriorityClass, outside
    # kube-system, included): the DaemonSet's own admission does not look at its template's.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent", **template["metadata"]}}
    admitted = real_kube.call(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/pods",
        params={"dryRun": "All"},
        json={**pod, "spec": {**template["spec"], "nodeName": NODE}},
    )
    assert admitted.status_code == 201, admitted.text
    assert admitted.json()["spec"]["priority"] == 2000001000  # system-node-critical's

    # The agent's identity, as its pod would have it: a token of its ServiceAccount.
    issued = real_kube.call(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{NAME}/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert issued.status_code == 201, issued.text
    made = real_kube.call(
        "POST",
        "/api/v1/nodes",
        json={"metadata": {"name": NODE, "labels": {"pool": "a"}}},
    )
    assert made.status_code == 201, made.text
    try:
        with httpx.Client(
            base_url=real_kube.url,
            headers={"Authorization": f"Bearer {issued.json()['status']['token']}"},
            verify=ssl.create_default_context(cafile=str(real_kube.plane.ca_file)),
            timeout=30,
        ) as agent:
            node = agent.get(f"/api/v1/nodes/{NODE}")
            assert node.status_code == 200, node.text
            assert node.json()["metadata"]["labels"]["pool"] == "a"
            refused = {
                "list nodes": agent.get("/api/v1/nodes"),
                "watch a node": agent.get(
                    "/api/v1/nodes", params={"watch": "1", "fieldSelector": f"metadata.name={NODE}"}
                ),
                "patch its node": agent.patch(
                    f"/api/v1/nodes/{NODE}",
                    json={"metadata": {"labels": {"pool": "b"}}},
                    headers={"Content-Type": "application/merge-patch+json"},
                ),
                "list secrets": agent.get("/api/v1/secrets"),
                "get its token's Secret": agent.get(
                    f"/api/v1/namespaces/{NAMESPACE}/secrets/pullkeeper-node-token"
                ),
                "list pods": agent.get(f"/api/v1/namespaces/{NAMESPACE}/pods"),
            }
            assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(
                refused, 403
            )
    finally:
        real_kube.call("DELETE", f"/api/v1/nodes/{NODE}")
