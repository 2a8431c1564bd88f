"""Shared pieces of the integration suite: the real `pullkeeper` executable, real tools, a
real registry (distribution 2.8 with htpasswd basic auth and TLS) holding one pushed image.

Nothing here is faked. A tool that is missing fails the tests needing it under CI (elsewhere
it skips them, loudly), with the tool's name in the reason; scripts/test installs them all.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kube.real import SCRIPT
from tests.tools import missing, pullkeeper_executable

RUN_TIMEOUT = 60
PULLKEEPER = pullkeeper_executable()


def require(tool: str, why: str) -> str:
    """The path of a real tool; `missing` when this machine does not have it."""
    path = shutil.which(tool)
    if path is None:
        missing(
            f"{tool} is not on PATH, so {why} do not run here (scripts/test installs the "
            "Debian packages; kubectl comes with the image)"
        )
    return path


@dataclass(frozen=True)
class Result:
    args: Sequence[str | bytes]
    returncode: int
    out: bytes
    err: bytes

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.out)

    def describe(self) -> str:
        return (
            f"command: {list(self.args)!r}\nexit status: {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )


def run(
    args: Sequence[str | bytes],
    *,
    stdin: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Result:
    data = stdin.encode("utf-8", "surrogateescape") if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        list(args),
        input=data,
        stdin=subprocess.DEVNULL if data is None else None,
        capture_output=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Result(list(args), proc.returncode, proc.stdout, proc.stderr)


def pk(
    *args: str | bytes,
    stdin: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Result:
    """Run the real pullkeeper executable."""
    return run([PULLKEEPER, *args], stdin=stdin, env=env, cwd=cwd)


def pk_ok(*args: str | bytes, **kwargs: Any) -> Result:
    result = pk(*args, **kwargs)
    assert result.returncode == 0, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    return result


def assert_one_line_error(result: Result, exit_status: int = 2) -> str:
    """Bad input: the given exit status, exactly one line on stderr, no traceback."""
    assert result.returncode == exit_status, result.describe()
    assert "Traceback" not in result.stderr, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr\n{result.describe()}"
    assert result.stderr.endswith("\n"), result.describe()
    return lines[0]


def b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def payload_of(secret: Mapping[str, Any]) -> bytes:
    """The decoded credential file a Secret manifest (parsed) carries."""
    key = {
        "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
        "kubernetes.io/dockercfg": ".dockercfg",
    }[secret["type"]]
    return base64.b64decode(secret["data"][key], validate=True)


def isolated_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment with nothing that could lend credentials from outside."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "REGISTRY_AUTH_FILE",
            "DOCKER_CONFIG",
            "KUBECONFIG",
            "GNUPGHOME",
            "PASSWORD_STORE_DIR",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
        }
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "run").mkdir(exist_ok=True)
    (home / ".config").mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["XDG_RUNTIME_DIR"] = str(home / "run")
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    if extra:
        env.update(extra)
    return env


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Registry:
    """A running docker-registry with basic auth over TLS, holding team-a/app:v1."""

    host: str  # 127.0.0.1:PORT, as a docker config key and an image domain
    username: str
    password: str
    cert_dir: Path  # holds ca.crt, as skopeo --cert-dir wants
    image: str  # 127.0.0.1:PORT/team-a/app:v1
    digest: str  # the pushed manifest's digest
    env: Mapping[str, str]  # for skopeo and pullkeeper: isolated HOME and runtime dirs

    def skopeo_inspect(self, authfile: Path, image: str | None = None) -> Result:
        return run(
            [
                "skopeo",
                "inspect",
                "--authfile",
                str(authfile),
                "--cert-dir",
                str(self.cert_dir),
                f"docker://{image or self.image}",
            ],
            env=self.env,
        )

    def assert_accepts(self, authfile: Path) -> None:
        result = self.skopeo_inspect(authfile)
        assert result.returncode == 0, (
            f"skopeo refused the credential file\n{authfile.read_text()}\n{result.describe()}"
        )
        info = result.json()
        assert info["Name"] == self.image.rsplit(":", 1)[0]
        assert info["Digest"] == self.digest
        assert "v1" in info["RepoTags"]

    def assert_refuses(self, authfile: Path) -> None:
        result = self.skopeo_inspect(authfile)
        assert result.returncode != 0, result.describe()
        said = result.stderr.lower()
        assert "unauthorized" in said or "authentication required" in said, (
            f"skopeo failed, but not on authentication\n{result.describe()}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _v2_status(url: str, context: ssl.SSLContext) -> int | None:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310
            status: int = response.status
            return status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


def build_oci_layout(directory: Path, tag: str) -> None:
    """A one-layer image as an OCI image layout, with the standard library only."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest

    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        content = b"hello from the pullkeeper integration tests\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    layer_tar = tar_buffer.getvalue()
    layer_gz = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
            },
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": blob(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": blob(layer_gz),
                    "size": len(layer_gz),
                }
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": blob(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


REGISTRY_USER = "alice"
# A ':' (user:password splitting), '&<>' (Go's HTML escaping in the payload) and non-ASCII.
REGISTRY_PASSWORD = "s3cr:et&<>-pässwörd"  # a throwaway test credential


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """docker-registry serve on 127.0.0.1, htpasswd (bcrypt) auth, self-signed TLS."""
    why = "the registry-backed tests"
    require("docker-registry", why)
    require("htpasswd", why)
    require("openssl", why)
    require("skopeo", why)
    base = tmp_path_factory.mktemp("registry")
    certs = base / "certs"
    certs.mkdir()
    env = isolated_env(base / "home")
    made = run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(base / "key.pem"),
            "-out",
            str(certs / "ca.crt"),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        env=env,
    )
    assert made.returncode == 0, made.describe()
    hashed = run(["htpasswd", "-Bbn", REGISTRY_USER, REGISTRY_PASSWORD], env=env)
    assert hashed.returncode == 0, hashed.describe()
    assert hashed.stdout.startswith(f"{REGISTRY_USER}:$2"), hashed.describe()
    (base / "htpasswd").write_bytes(hashed.out)
    (base / "data").mkdir()
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))

    proc: subprocess.Popen[bytes] | None = None
    log_path = base / "registry.log"
    port = 0
    for _attempt in range(3):
        port = _free_port()
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {
                "filesystem": {"rootdirectory": str(base / "data")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": f"127.0.0.1:{port}",
                "secret": "integration-tests-only",
                "tls": {"certificate": str(certs / "ca.crt"), "key": str(base / "key.pem")},
            },
            "auth": {"htpasswd": {"realm": "basic-realm", "path": str(base / "htpasswd")}},
        }
        # JSON is YAML: no need for a YAML writer here.
        (base / "config.yml").write_text(json.dumps(config))
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(base / "config.yml")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            status = _v2_status(f"https://127.0.0.1:{port}/v2/", context)
            if status is not None:
                break
            time.sleep(0.05)
        if status == 401:
            break
        proc.kill()
        proc.wait(timeout=10)
        proc = None
    if proc is None:
        pytest.fail(
            "docker-registry did not come up answering 401 on GET /v2/:\n"
            + log_path.read_text(errors="replace")
        )

    try:
        host = f"127.0.0.1:{port}"
        image = f"{host}/team-a/app:v1"
        layout = base / "oci"
        build_oci_layout(layout, "v1")
        digest_file = base / "digest"
        pushed = run(
            [
                "skopeo",
                "copy",
                "--digestfile",
                str(digest_file),
                "--dest-creds",
                f"{REGISTRY_USER}:{REGISTRY_PASSWORD}",
                "--dest-cert-dir",
                str(certs),
                f"oci:{layout}:v1",
                f"docker://{image}",
            ],
            env=env,
        )
        assert pushed.returncode == 0, pushed.describe()
        yield Registry(
            host=host,
            username=REGISTRY_USER,
            password=REGISTRY_PASSWORD,
            cert_dir=certs,
            image=image,
            digest=digest_file.read_text().strip(),
            env=env,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------- the kubelet


def kubelet_request(image: str) -> bytes:
    """The request as the kubelet v1.34 encodes it."""
    return (
        b'{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
        b'"image":"' + image.encode() + b'"}\n'
    )


MATCH_IMAGES = ("quay.io", "*.example.com:5000", "docker.io", "gcr.io")


@dataclass(frozen=True)
class Kubelet:
    """The kubelet's own credential provider code (`scripts/kube kubelet-keyring`) with
    pullkeeper installed as its provider the way docs/kubernetes.md says: a wrapper named
    as the provider in the bin directory, the command's options in the provider's args."""

    directory: Path

    def install(self, *args: str, match_images: Sequence[str] = MATCH_IMAGES) -> None:
        bin_dir = self.directory / "bin"
        bin_dir.mkdir(exist_ok=True)
        wrapper = bin_dir / "pullkeeper"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"echo run >>{self.directory / 'runs'}\n"
            f'exec {PULLKEEPER} kubelet-credential-provider "$@"\n'
        )
        wrapper.chmod(0o755)
        (self.directory / "providers.yaml").write_text(
            "apiVersion: kubelet.config.k8s.io/v1\n"
            "kind: CredentialProviderConfig\n"
            "providers:\n"
            "- name: pullkeeper\n"
            f"  matchImages: {json.dumps(list(match_images))}\n"
            "  defaultCacheDuration: 1m\n"
            "  apiVersion: credentialprovider.kubelet.k8s.io/v1\n"
            f"  args: {json.dumps(list(args))}\n"
        )

    def lookup(self, *images: str) -> tuple[dict[str, list[tuple[str, str]]], Result]:
        """What the kubelet tries for each image (in turn, one kubelet), and its run."""
        result = run(
            [
                str(SCRIPT),
                "kubelet-keyring",
                str(self.directory / "providers.yaml"),
                str(self.directory / "bin"),
                *images,
            ]
        )
        assert result.returncode == 0, result.describe()
        found = {}
        for line in result.stdout.splitlines():
            doc = json.loads(line)
            found[doc["image"]] = [(c["username"], c["password"]) for c in doc["credentials"]]
        return found, result

    @property
    def runs(self) -> int:
        """How many times the kubelet ran pullkeeper."""
        path = self.directory / "runs"
        return len(path.read_text().splitlines()) if path.exists() else 0


def make_kubelet(tmp_path: Path) -> Kubelet:
    """A Kubelet in tmp_path; `missing` when kubelet-keyring is not built."""
    built = run([str(SCRIPT), "check", "kubelet-keyring"])
    if built.returncode != 0:
        missing(
            f"{built.stdout.strip()}: the tests of the kubelet's own credential provider code "
            "do not run (scripts/test builds it)"
        )
    directory = tmp_path / "kubelet"
    directory.mkdir()
    return Kubelet(directory)


@pytest.fixture
def kubelet(tmp_path: Path) -> Kubelet:
    return make_kubelet(tmp_path)
