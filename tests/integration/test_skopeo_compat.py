"""pullkeeper's Secrets against a real registry (distribution 2.8, basic auth, TLS) and a
real client (skopeo): what pullkeeper writes, skopeo can pull with; what skopeo writes,
pullkeeper imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import Registry, b64, payload_of, pk_ok, run

pytestmark = pytest.mark.integration


def create_secret(registry: Registry, server: str, password: str, out: Path) -> Path:
    result = pk_ok(
        "secret",
        "create",
        "docker-registry",
        "regcred",
        "--docker-server",
        server,
        "--docker-username",
        registry.username,
        "--password-stdin",
        stdin=password + "\n",
        env=registry.env,
    )
    assert result.err == b"", result.describe()
    out.write_bytes(result.out)
    return out


def secret_payload_to_file(secret_text: bytes, out: Path) -> Path:
    """A Secret manifest's (YAML or JSON) payload, written out as a credential file."""
    out.write_bytes(payload_of(yaml.safe_load(secret_text)))
    return out


def test_registry_refuses_anonymous_and_wrong_credentials(
    registry: Registry, tmp_path: Path
) -> None:
    """The registry really checks credentials, so the successes below mean something."""
    empty = tmp_path / "empty.json"
    empty.write_text('{"auths":{}}')
    registry.assert_refuses(empty)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps({"auths": {registry.host: {"auth": b64(f"{registry.username}:nope")}}})
    )
    registry.assert_refuses(wrong)


@pytest.mark.parametrize("server_form", ["{host}", "https://{host}", "https://{host}/v1/"])
def test_created_secret_is_accepted_by_skopeo(
    registry: Registry, tmp_path: Path, server_form: str
) -> None:
    server = server_form.format(host=registry.host)
    secret_path = create_secret(registry, server, registry.password, tmp_path / "secret.yaml")

    decoded = pk_ok("secret", "decode", str(secret_path), "-o", "json").json()
    assert decoded == {
        "type": "kubernetes.io/dockerconfigjson",
        "auths": {server: {"username": registry.username, "password": None, "email": ""}},
    }
    revealed = pk_ok("secret", "decode", str(secret_path), "-o", "json", "--show-secrets").json()
    assert revealed["auths"][server]["password"] == registry.password

    authfile = secret_payload_to_file(secret_path.read_bytes(), tmp_path / "auth.json")
    registry.assert_accepts(authfile)


def test_created_secret_with_a_wrong_password_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    secret_path = create_secret(
        registry, registry.host, registry.password + "-wrong", tmp_path / "secret.yaml"
    )
    authfile = secret_payload_to_file(secret_path.read_bytes(), tmp_path / "auth.json")
    registry.assert_refuses(authfile)


def test_created_secret_for_another_repository_path_is_not_used(
    registry: Registry, tmp_path: Path
) -> None:
    """A key with a path scopes the credential: skopeo and the kubelet agree on it."""
    secret_path = create_secret(
        registry, f"{registry.host}/team-b", registry.password, tmp_path / "secret.yaml"
    )
    authfile = secret_payload_to_file(secret_path.read_bytes(), tmp_path / "auth.json")
    registry.assert_refuses(authfile)
    resolved = pk_ok(
        "creds", "resolve", registry.image, "--config", str(secret_path), "-o", "json"
    ).json()
    assert resolved["found"] is False
    assert resolved["matches"] == []


@pytest.fixture
def skopeo_login_file(registry: Registry, tmp_path: Path) -> Path:
    login = tmp_path / "login" / "config.json"
    result = run(
        [
            "skopeo",
            "login",
            "--authfile",
            str(login),
            "--cert-dir",
            str(registry.cert_dir),
            "--username",
            registry.username,
            "--password-stdin",
            registry.host,
        ],
        stdin=registry.password,
        env=registry.env,
    )
    assert result.returncode == 0, result.describe()
    written = json.loads(login.read_text())
    # skopeo writes only `auth`: the import must decode it.
    assert set(written["auths"][registry.host]) == {"auth"}, written
    return login


def test_import_of_skopeo_login_file_is_accepted_by_skopeo(
    registry: Registry, skopeo_login_file: Path, tmp_path: Path
) -> None:
    imported = pk_ok("secret", "import", str(skopeo_login_file), env=registry.env)
    assert imported.err == b"", imported.describe()
    assert registry.password not in imported.stdout
    secret = yaml.safe_load(imported.out)
    assert secret["kind"] == "Secret"
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"] == {"name": "regcred", "creationTimestamp": None}
    config = json.loads(payload_of(secret))
    assert config["auths"][registry.host]["auth"] == b64(f"{registry.username}:{registry.password}")

    authfile = secret_payload_to_file(imported.out, tmp_path / "auth.json")
    registry.assert_accepts(authfile)
    # The JSON output carries the very same payload.
    as_json = pk_ok("secret", "import", str(skopeo_login_file), "-o", "json", env=registry.env)
    assert payload_of(as_json.json()) == payload_of(secret)
    registry.assert_accepts(secret_payload_to_file(as_json.out, tmp_path / "auth-json.json"))


def test_resolve_finds_exactly_the_imported_credential(
    registry: Registry, skopeo_login_file: Path, tmp_path: Path
) -> None:
    secret_path = tmp_path / "secret.yaml"
    secret_path.write_bytes(
        pk_ok("secret", "import", str(skopeo_login_file), "--name", "pull", "-n", "team-a").out
    )
    resolved = pk_ok("creds", "resolve", registry.image, "--config", str(secret_path), "-o", "json")
    assert registry.password not in resolved.stdout + resolved.stderr
    assert resolved.json() == {
        "image": registry.image,
        "repository": registry.image.rsplit(":", 1)[0],
        "found": True,
        "matches": [
            {
                "registry": registry.host,
                "username": registry.username,
                "email": "",
                "source": str(secret_path),
            }
        ],
    }
    shown = pk_ok(
        "creds",
        "resolve",
        registry.image,
        "--config",
        str(secret_path),
        "-o",
        "json",
        "--show-secrets",
    ).json()
    assert [m["password"] for m in shown["matches"]] == [registry.password]

    # The port is part of the registry address: the same host on another port does not match.
    host, port = registry.host.rsplit(":", 1)
    other = f"{host}:{int(port) + 1}/team-a/app:v1"
    elsewhere = pk_ok("creds", "resolve", other, "--config", str(secret_path), "-o", "json")
    assert elsewhere.json()["found"] is False


def test_import_then_decode_round_trip(
    registry: Registry, skopeo_login_file: Path, tmp_path: Path
) -> None:
    secret_path = tmp_path / "secret.json"
    secret_path.write_bytes(pk_ok("secret", "import", str(skopeo_login_file), "-o", "json").out)
    decoded = pk_ok("secret", "decode", str(secret_path), "-o", "json")
    assert registry.password not in decoded.stdout + decoded.stderr
    assert decoded.json() == {
        "type": "kubernetes.io/dockerconfigjson",
        "auths": {registry.host: {"username": registry.username, "password": None, "email": ""}},
    }
    # The login file itself decodes the same way.
    direct = pk_ok("secret", "decode", str(skopeo_login_file), "-o", "json").json()
    assert direct["auths"] == decoded.json()["auths"]
    shown = pk_ok("secret", "decode", str(secret_path), "-o", "json", "--show-secrets").json()
    assert shown["auths"][registry.host]["password"] == registry.password
