"""containerd pulls with what `pullkeeper node apply` wrote: a containerd of the test's own
(Debian's, root, state and socket in a temporary directory; its CRI plugin off) pulls with
`ctr image pull --hosts-dir` from local docker-registry servers, using only the hosts.toml
and CA files the command wrote: over TLS with a self-signed CA, plain HTTP only when the
profile marks the registry insecure, and through a mirror when the profile names one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import pullkeeper
from tests.registry.conftest import MakeFaultProxy
from tests.registry.servers import APP, BasicRegistry, PlainRegistry
from tests.tools import missing, pullkeeper_executable

WHY = "containerd (Debian's containerd package, installed by scripts/test) and root"


@dataclass
class Containerd:
    socket: Path

    def pull(
        self, ref: str, hosts_dir: Path, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = ["ctr", "--address", str(self.socket), "-n", "pktest", "image", "pull"]
        args += ["--hosts-dir", str(hosts_dir)] + (["--user", user] if user else [])
        done = subprocess.run([*args, ref], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode == 0:  # the next pull must reach the registry again
            subprocess.run(
                ["ctr", "--address", str(self.socket), "-n", "pktest", "image", "rm", ref],
                capture_output=True,
                timeout=30,
                check=False,
            )
        return done


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    if shutil.which("containerd") is None or shutil.which("ctr") is None or os.geteuid() != 0:
        missing(WHY)
    base = tmp_path_factory.mktemp("containerd")
    config = base / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{base}/containerd.sock"\n'
        f'[ttrpc]\n  address = "{base}/containerd.sock.ttrpc"\n'
        f'[debug]\n  address = "{base}/debug.sock"\n'
        '[metrics]\n  address = ""\n'
    )
    log = (base / "containerd.log").open("w")
    process = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log)
    socket = base / "containerd.sock"
    try:
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                ["ctr", "--address", str(socket), "version"], capture_output=True, check=False
            ).returncode
            != 0
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"containerd did not start: {(base / 'containerd.log').read_text()}")
            time.sleep(0.2)
        yield Containerd(socket)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def apply(tmp: Path, profile: dict[str, object]) -> Path:
    """`pullkeeper node apply` for containerd with its files under tmp; the hosts directory."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "profile.yaml").write_text(yaml.safe_dump(profile))
    hosts = tmp / "certs.d"
    done = subprocess.run(
        [
            pullkeeper_executable(),
            "node",
            "apply",
            "--profile",
            str(tmp / "profile.yaml"),
            "--runtime",
            "containerd",
            "--containerd-config",
            str(tmp / "config.toml"),
            "--containerd-hosts-dir",
            str(hosts),
            "--state-dir",
            str(tmp / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # The project under test, wherever it is checked out.
        env={**os.environ, "PYTHONPATH": str(Path(pullkeeper.__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr
    return hosts


def test_a_self_signed_registry_pulls_with_the_ca_pullkeeper_wrote(
    containerd: Containerd, basic_registry: BasicRegistry, tmp_path: Path
) -> None:
    r = basic_registry
    assert r.ca_file is not None and r.credentials is not None
    ref, user = f"{r.host}/{APP}", r.credentials.creds
    # Without its CA the registry's certificate is not trusted.
    no_ca = apply(tmp_path / "no-ca", {"registries": [{"host": r.host}]})
    refused = containerd.pull(ref, no_ca, user)
    assert refused.returncode != 0 and "x509" in refused.stderr, refused.stderr
    hosts = apply(tmp_path, {"registries": [{"host": r.host, "ca": r.ca_file.read_text()}]})
    assert (hosts / r.host / "ca.crt").read_bytes() == r.ca_file.read_bytes()
    done = containerd.pull(ref, hosts, user)
    assert done.returncode == 0, done.stderr


def test_plain_http_only_when_the_profile_says_insecure(
    containerd: Containerd, plain_registry: PlainRegistry, tmp_path: Path
) -> None:
    r = plain_registry
    ref = f"{r.host}/{APP}"
    secure = apply(tmp_path / "secure", {"registries": [{"host": r.host}]})
    refused = containerd.pull(ref, secure)
    assert refused.returncode != 0, refused.stdout
    insecure = apply(tmp_path / "insecure", {"registries": [{"host": r.host, "insecure": "http"}]})
    done = containerd.pull(ref, insecure)
    assert done.returncode == 0, done.stderr


def test_a_mirror_serves_a_registry_that_cannot_be_reached(
    containerd: Containerd, plain_registry: PlainRegistry, tmp_path: Path
) -> None:
    upstream = "registry.pullkeeper.invalid:5000"  # .invalid never resolves (RFC 6761)
    ref = f"{upstream}/{APP}"
    alone = apply(tmp_path / "alone", {"registries": [{"host": upstream}]})
    assert containerd.pull(ref, alone).returncode != 0
    mirrored = apply(
        tmp_path / "mirrored",
        {
            "registries": [
                {"host": upstream, "mirrors": [plain_registry.url]},
                {"host": plain_registry.host, "insecure": "http"},
            ]
        },
    )
    done = containerd.pull(ref, mirrored)
    assert done.returncode == 0, done.stderr


def predicted(tmp: Path, image: str) -> dict[str, Any]:
    """What `creds resolve --node-profile` says of the way to image with the profile apply
    wrote in tmp."""
    args = ["creds", "resolve", image, "-o", "json", "--node-profile", str(tmp / "profile.yaml")]
    done = subprocess.run(
        [pullkeeper_executable(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(pullkeeper.__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr
    node: dict[str, Any] = json.loads(done.stdout)["node_profile"]
    return node


@pytest.mark.parametrize(
    ("mirror", "served"),
    [
        # A path-prefixed mirror: its /v2/team-a stands for /v2, so the registry behind the
        # proxy is asked for team-a/app.
        ({"path": "/v2/team-a", "override_path": True}, True),
        # Without override_path containerd puts /v2 after the path: /team-a/v2/app, which the
        # registry does not serve; the unreachable upstream after it fails too.
        ({"path": "/team-a", "override_path": False}, False),
    ],
)
def test_containerd_asks_the_mirror_the_url_the_prediction_names(
    containerd: Containerd,
    fault_proxy: MakeFaultProxy,
    tmp_path: Path,
    mirror: dict[str, Any],
    served: bool,
) -> None:
    proxy = fault_proxy()
    upstream = "registry.pullkeeper.invalid:5000"
    ref = f"{upstream}/app:v1"  # the registry behind the proxy holds it as team-a/app:v1
    url = proxy.url + mirror["path"]
    hosts = apply(
        tmp_path,
        {
            "registries": [
                {
                    "host": upstream,
                    "mirrors": [{"url": url, "override_path": mirror["override_path"]}],
                }
            ]
        },
    )
    route = predicted(tmp_path, ref)
    (hop,) = route["mirrors"]
    assert (hop["url"], route["server"]["url"]) == (url, f"https://{upstream}")
    expected = urlsplit(hop["repository_url"]).path + "/"
    done = containerd.pull(ref, hosts)
    assert (done.returncode == 0) == served, done.stderr
    paths = [r.path for r in proxy.requests]
    assert any(p.startswith(expected + "manifests/") for p in paths), paths
    assert all(p.startswith(expected) for p in paths), paths
