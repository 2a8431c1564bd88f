"""Where the server connects on a member's behalf: the forgeries an attacker tried, replayed.

A member names a registry in a check's credential file, or stores a credential whose
registry names a token realm; the server must not become their way into loopback, cloud
metadata, its own listeners or a host that collects passwords. Each test points the
server at a recording listener on loopback and looks at what reached it.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.registry.recorder import LEAKED_TEXT, NOT_A_REGISTRY, ChallengingRegistry, Recorder
from tests.server.conftest import Env, assert_error

PASSWORD = "stored-password-Kq72mw"  # what must never reach the recorder


def _config(address: str, username: str = "robot", password: str = PASSWORD) -> str:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {address: {"auth": auth}}})


def _member(env: Env) -> Any:
    env.cluster("c1")
    env.project("web")
    env.namespace("shop", "web")
    _, token = env.quick_user("mallory")
    env.member("web", "mallory", "member")
    return env.api(token)


def _check_with_file(api: Any, address: str) -> dict[str, Any]:
    report: dict[str, Any] = api.ok(
        "POST", "checks", json={"image": f"{address}/probe:v1", "config": _config(address)}
    )
    return report


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as listener:
        yield listener


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- forgery by check


@pytest.mark.settings(egress_allow=[])
def test_a_member_cannot_make_the_server_connect_to_loopback(env: Env, recorder: Recorder) -> None:
    api = _member(env)
    targets = [recorder.address, f"localhost:{recorder.port}"]
    listeners = [recorder]
    if _ipv6_loopback():
        v6 = Recorder("::1")
        listeners.append(v6)
        targets.append(v6.address)
    try:
        for address in targets:
            report = _check_with_file(api, address)
            assert report["ok"] is False
            assert report["error"]["cause"] == "not_allowed", report
            assert report["error"]["setting"] == "egress_allow"
            assert "loopback" in report["error"]["message"]
            assert "egress_allow" in report["error"]["message"]
        # Open and closed ports look alike: nothing is connected to either.
        closed = Recorder()
        closed_port = closed.port
        closed.close()
        report = _check_with_file(api, f"127.0.0.1:{closed_port}")
        assert report["error"]["cause"] == "not_allowed"
        assert all(listener.received == [] for listener in listeners)
    finally:
        for listener in listeners[1:]:
            listener.close()


@pytest.mark.settings(egress_allow=[])
def test_cloud_metadata_is_refused_without_a_connection(env: Env) -> None:
    api = _member(env)
    report = _check_with_file(api, "169.254.169.254")
    assert report["error"]["cause"] == "not_allowed"
    assert "link-local" in report["error"]["message"]


def test_the_servers_own_listener_stays_refused_when_loopback_is_allowed(
    env: Env, recorder: Recorder
) -> None:
    # Loopback is allowed (the env's admin allowed 127.0.0.1); the server's own port is not.
    env.server.egress = env.server.settings.model_copy(update={"port": recorder.port}).egress
    report = _check_with_file(_member(env), recorder.address)
    assert report["error"]["cause"] == "not_allowed"
    assert "own listener" in report["error"]["message"]
    assert recorder.received == []


@pytest.mark.settings(egress_allow=["127.0.0.0/8"], egress_deny=["127.0.0.1"])
def test_a_denied_address_is_refused_though_its_network_is_allowed(
    env: Env, recorder: Recorder
) -> None:
    report = _check_with_file(_member(env), recorder.address)
    assert report["error"]["cause"] == "not_allowed"
    assert report["error"]["setting"] == "egress_deny"
    assert "egress_deny lists 127.0.0.1" in report["error"]["message"]
    assert recorder.received == []


@pytest.mark.parametrize("status", [b"400 Bad Request", b"403 Forbidden"])
def test_what_a_service_that_is_no_registry_answers_is_not_echoed(env: Env, status: bytes) -> None:
    # Allowed (as a private-range registry would be), and it answers: only a summary returns.
    reply = NOT_A_REGISTRY.replace(b"404 Not Found", status)
    with Recorder(reply=reply) as service:
        env.server.settings.insecure_registries.append(service.address)
        report = _check_with_file(_member(env), service.address)
        assert len(service.received) >= 1  # it was reached: the policy allowed it
    assert report["ok"] is False
    text = json.dumps(report)
    assert LEAKED_TEXT not in text and "admin console" not in text
    assert f"HTTP {status[:3].decode()}, application/json" in report["error"]["message"]


def test_a_check_with_a_file_keeps_to_the_members_project_allowlist(
    env: Env, recorder: Recorder
) -> None:
    api = _member(env)
    env.admin.ok("PUT", "projects/web/policy", json={"allowlist": ["registry.example.com"]})
    report = _check_with_file(api, recorder.address)
    assert report["error"]["cause"] == "not_allowed"
    assert "allowlist" in report["error"]["message"] and "web" in report["error"]["message"]
    assert recorder.received == []
    # The admin is not held to a project's allowlist: the egress policy alone decides.
    env.server.settings.insecure_registries.append(recorder.address)
    admin_report = _check_with_file(env.admin, recorder.address)
    assert admin_report["error"]["cause"] != "not_allowed"
    assert len(recorder.received) >= 1


@pytest.mark.parametrize("mode", ["warn", "audit"])
def test_a_namespace_check_keeps_to_the_allowlist_whatever_the_mode(
    env: Env, recorder: Recorder, mode: str
) -> None:
    api = _member(env)
    env.admin.ok(
        "PUT", "projects/web/policy", json={"allowlist": ["registry.example.com"], "mode": mode}
    )
    image = f"{recorder.address}/probe:v1"
    report = api.ok("POST", "checks", json={"image": image, "cluster": "c1", "namespace": "shop"})
    assert report["error"]["cause"] == "not_allowed"
    assert f"in {mode} mode the pod would run" in report["error"]["message"]
    assert recorder.received == []


# --------------------------------------------------------------------------- token realms


@pytest.fixture
def challenging(tmp_path: Path) -> Iterator[ChallengingRegistry]:
    with ChallengingRegistry(tmp_path) as registry:
        yield registry


def _trust(env: Env, host: str, ca: Path) -> None:
    target = env.data / "certs.d" / host
    target.mkdir(parents=True)
    shutil.copyfile(ca, target / "ca.crt")


@pytest.mark.settings(egress_allow=["127.0.0.0/8"])
def test_a_stored_password_is_not_sent_to_a_realm_on_another_host(
    env: Env, challenging: ChallengingRegistry
) -> None:
    _trust(env, challenging.host, challenging.ca_file)
    api = _member(env)
    with Recorder("127.0.0.2") as elsewhere:
        challenging.realm = f"https://{elsewhere.address}/token"
        cred = env.cred(
            "robot", scope="project", project="web", server=challenging.host, password=PASSWORD
        )
        api.ok("POST", f"credentials/{cred['id']}/verify")
        last = env.admin.ok("GET", f"credentials/{cred['id']}")["last_check"]
        assert last["cause"] == "untrusted_realm"
        assert elsewhere.address in last["message"] and "token hosts" in last["message"]
        # The namespace's check goes the same way.
        report = api.ok(
            "POST",
            "checks",
            json={"image": f"{challenging.host}/app:v1", "cluster": "c1", "namespace": "shop"},
        )
        assert report["attempts"][0]["cause"] == "untrusted_realm"
        assert elsewhere.received == []

        # An owner who trusts that host for this credential lets the login go there.
        env.admin.ok(
            "PATCH", f"credentials/{cred['id']}", json={"token_hosts": [elsewhere.address]}
        )
        api.ok("POST", f"credentials/{cred['id']}/verify")
        assert len(elsewhere.received) == 1  # reached (its certificate is not trusted here)
        assert PASSWORD.encode() not in elsewhere.received[0]


@pytest.mark.settings(egress_allow=["127.0.0.0/8"])
def test_a_stored_password_is_not_sent_over_plain_http_from_an_https_registry(
    env: Env, challenging: ChallengingRegistry
) -> None:
    _trust(env, challenging.host, challenging.ca_file)
    api = _member(env)
    with Recorder("127.0.0.1") as same_host:
        challenging.realm = f"http://{same_host.address}/token"
        cred = env.cred(
            "robot", scope="project", project="web", server=challenging.host, password=PASSWORD
        )
        api.ok("POST", f"credentials/{cred['id']}/verify")
        last = env.admin.ok("GET", f"credentials/{cred['id']}")["last_check"]
        assert last["cause"] == "untrusted_realm"
        assert "plain http" in last["message"]
        assert same_host.received == []


def test_token_hosts_are_checked_when_stored(env: Env) -> None:
    env.cluster("c1")
    response = env.admin.post(
        "credentials",
        json={
            "name": "robot",
            "cluster": "c1",
            "scope": "cluster",
            "server": "registry.example.com",
            "username": "robot",
            "password": PASSWORD,
            "token_hosts": ["https://auth.example.com/token"],
        },
    )
    assert_error(response, 422, "invalid", field="token_hosts")
