"""skopeo (containers-image, as CRI-O and podman) pulls with what `pullkeeper node apply
--runtime containers` wrote: its registries.conf drop-in, certs.d and auth.json, given to
skopeo as --registries-conf, --cert-dir and --authfile."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import yaml

import pullkeeper
from tests.integration.conftest import pk, pk_ok
from tests.registry.conftest import MakeFaultProxy
from tests.registry.servers import APP, BasicRegistry, PlainRegistry
from tests.tools import pullkeeper_executable


def apply(tmp: Path, profile: dict[str, object]) -> Path:
    """The profile applied for containers-image under tmp/root; the containers directory."""
    root = tmp / "root"
    root.mkdir(parents=True)
    (tmp / "profile.yaml").write_text(yaml.safe_dump(profile))
    done = subprocess.run(
        [
            pullkeeper_executable(),
            "node",
            "apply",
            "--profile",
            str(tmp / "profile.yaml"),
            "--runtime",
            "containers",
            "--root",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(pullkeeper.__file__).parents[1])},
    )
    assert done.returncode == 0, done.stderr
    return root / "etc/containers"


def inspect(
    ref: str, containers: Path, host: str | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["skopeo", "--registries-conf", str(containers / "registries.conf.d/50-pullkeeper.conf")]
    args += ["inspect", "--raw"]
    if host is not None:
        args += ["--cert-dir", str(containers / "certs.d" / host)]
    if (containers / "auth.json").exists():
        args += ["--authfile", str(containers / "auth.json")]
    return subprocess.run(
        [*args, f"docker://{ref}"], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_self_signed_registry_with_the_login_and_ca_written(
    basic_registry: BasicRegistry, tmp_path: Path
) -> None:
    r = basic_registry
    assert r.ca_file is not None and r.credentials is not None
    login = {"username": r.credentials.username, "password": r.credentials.password}
    containers = apply(
        tmp_path,
        {"registries": [{"host": r.host, "ca": r.ca_file.read_text()}], "logins": {r.host: login}},
    )
    assert (containers / "auth.json").stat().st_mode & 0o777 == 0o600
    done = inspect(f"{r.host}/{APP}", containers, r.host)
    assert done.returncode == 0, done.stderr
    untrusted = inspect(f"{r.host}/{APP}", containers)  # the CA left out
    assert untrusted.returncode != 0 and "x509" in untrusted.stderr, untrusted.stderr


def test_a_mirror_and_an_insecure_registry_from_registries_conf(
    plain_registry: PlainRegistry, tmp_path: Path
) -> None:
    upstream = "registry.pullkeeper.invalid:5000"
    containers = apply(
        tmp_path,
        {
            "registries": [
                {"host": upstream, "mirrors": [plain_registry.url]},
                {"host": plain_registry.host, "insecure": "http"},
            ]
        },
    )
    direct = inspect(f"{plain_registry.host}/{APP}", containers)
    assert direct.returncode == 0, direct.stderr
    mirrored = inspect(f"{upstream}/{APP}", containers)
    assert mirrored.returncode == 0, mirrored.stderr
    secure = apply(tmp_path / "secure", {"registries": [{"host": plain_registry.host}]})
    refused = inspect(f"{plain_registry.host}/{APP}", secure)
    assert refused.returncode != 0


def test_a_path_prefixed_mirror_is_asked_the_url_the_prediction_names(
    fault_proxy: MakeFaultProxy, tmp_path: Path
) -> None:
    """registries.conf names the mirror so that containers-image asks the URLs containerd
    asks for the same profile (and `creds resolve --node-profile` predicts)."""
    proxy = fault_proxy()
    upstream = "registry.pullkeeper.invalid:5000"
    ref = f"{upstream}/app:v1"  # the registry behind the proxy holds it as team-a/app:v1
    profile = {
        "registries": [
            {
                "host": upstream,
                "mirrors": [{"url": f"{proxy.url}/v2/team-a", "override_path": True}],
            }
        ]
    }
    containers = apply(tmp_path, profile)
    predicted = pk_ok(
        "creds", "resolve", ref, "--node-profile", str(tmp_path / "profile.yaml"), "-o", "json"
    )
    (hop,) = json.loads(predicted.stdout)["node_profile"]["mirrors"]
    expected = urlsplit(hop["repository_url"]).path + "/"
    done = inspect(ref, containers)
    assert done.returncode == 0, done.stderr
    # containers-image checks the host's API root first (containerd does not).
    paths = [r.path for r in proxy.requests]
    assert paths[0] == "/v2/", paths
    assert any(p.startswith(expected + "manifests/") for p in paths), paths
    assert all(p.startswith(expected) for p in paths[1:]), paths


def test_a_mirror_containers_image_cannot_ask_is_left_out_and_said(tmp_path: Path) -> None:
    """A mirror whose API is not under /v2/ (containerd asks /cache/v2/...) cannot be named in
    registries.conf: it is left out there (containerd still uses it), and a note says so."""
    (tmp_path / "profile.yaml").write_text(
        yaml.safe_dump(
            {"registries": [{"host": "quay.io", "mirrors": ["https://m.corp.example/cache"]}]}
        )
    )
    (tmp_path / "root").mkdir()
    result = pk(
        "node",
        "apply",
        "--profile",
        str(tmp_path / "profile.yaml"),
        "--runtime",
        "containers",
        "--runtime",
        "containerd",
        "--root",
        str(tmp_path / "root"),
    )
    assert result.returncode == 0, result.describe()
    [note] = result.stderr.splitlines()
    assert note.startswith("note: containers: registries[0].mirrors[0].url: left out"), note
    assert "/cache/v2" in note
    conf = (tmp_path / "root/etc/containers/registries.conf.d/50-pullkeeper.conf").read_text()
    assert "m.corp.example" not in conf
    hosts = (tmp_path / "root/etc/containerd/certs.d/quay.io/hosts.toml").read_text()
    assert 'host."https://m.corp.example/cache"' in hosts
