"""The webhook over real TLS from `pullkeeper serve --webhook-port`, trusted through the
caBundle that `pullkeeper webhook manifests` prints; and the certificate's renewal."""

from __future__ import annotations

import base64
import datetime as dt
import ssl
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pullkeeper.kube import certs
from pullkeeper.services import webhook_tls
from pullkeeper.settings import Settings
from tests.admission.conftest import pod, review
from tests.integration.conftest import pk
from tests.integration.test_cli_server import free_port, start_server


def test_the_webhook_serves_tls_trusted_by_the_printed_ca_bundle(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(tmp_path / "server", ["--webhook-port", str(port)])
    try:
        data = tmp_path / "server" / "data"
        url = f"https://127.0.0.1:{port}"
        printed = pk("webhook", "manifests", "--data", str(data), "--url", url, "--cluster", "c1")
        assert printed.returncode == 0, printed.describe()
        docs = list(yaml.safe_load_all(printed.stdout))
        kinds = [d["kind"] for d in docs]
        assert kinds == [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ]
        for doc in docs:
            kubernetes_validate.validate(doc, "1.32", strict=True)
        (mutating,) = docs[3]["webhooks"]
        (validating,) = docs[4]["webhooks"]
        assert mutating["clientConfig"]["url"] == f"{url}/admission/mutate/c1"
        assert (mutating["failurePolicy"], validating["failurePolicy"]) == ("Ignore", "Fail")
        assert mutating["reinvocationPolicy"] == "IfNeeded"
        assert mutating["sideEffects"] == validating["sideEffects"] == "None"
        assert mutating["namespaceSelector"]["matchExpressions"][0] == {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["pullkeeper", "kube-system"],
        }
        assert mutating["clientConfig"]["caBundle"] == validating["clientConfig"]["caBundle"]
        ca = base64.b64decode(mutating["clientConfig"]["caBundle"])
        assert ca == (data / "webhook" / "ca.crt").read_bytes()
        context = ssl.create_default_context(cadata=ca.decode())
        body = review(pod("nginx"))
        answer = httpx.post(f"{url}/admission/mutate/c1", json=body, verify=context, timeout=10)
        assert answer.status_code == 200, answer.text
        response = answer.json()["response"]
        assert (response["uid"], response["allowed"]) == (body["request"]["uid"], True)
        # No cluster is registered on this server: passed, and said so.
        assert "no cluster 'c1'" in response["warnings"][0]
        # Another CA does not vouch for it: the verification is real.
        other, _ = certs.ensure(tmp_path / "other", ["localhost"])
        stranger = ssl.create_default_context(cafile=str(other.ca))
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{url}/admission/mutate", json=body, verify=stranger, timeout=10)
        # The API listener stays plain HTTP on its own port.
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()


def test_renewal_keeps_the_ca(tmp_path: Path) -> None:
    hosts = ["pullkeeper.pullkeeper.svc", "127.0.0.1"]
    now = dt.datetime.now(dt.UTC)
    first, issued = certs.ensure(tmp_path, hosts, now)
    assert issued
    ca = first.ca.read_bytes()
    leaf = x509.load_pem_x509_certificate(first.cert.read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["pullkeeper.pullkeeper.svc"]
    assert first.key.stat().st_mode & 0o077 == 0
    # Nothing to do while it is fresh; renewed 30 days before it expires; CA unchanged.
    assert certs.ensure(tmp_path, hosts, now + dt.timedelta(days=300))[1] is False
    again, renewed = certs.ensure(tmp_path, hosts, now + dt.timedelta(days=340))
    assert renewed and again.ca.read_bytes() == ca
    assert again.cert.read_bytes() != leaf.public_bytes(serialization.Encoding.PEM)
    # New names: a new certificate for them, from the same CA.
    _, renamed = certs.ensure(tmp_path, [*hosts, "webhook.example.com"], now)
    assert renamed and again.ca.read_bytes() == ca


def _served_by(context: ssl.SSLContext, ca: Path) -> bool:
    """Whether a client trusting only `ca` completes a TLS handshake with `context` (in
    memory: the bytes pumped between the two ends)."""
    client_context = ssl.create_default_context(cafile=str(ca))
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out, server_hostname="127.0.0.1")
    server = context.wrap_bio(server_in, server_out, server_side=True)
    done: set[int] = set()
    for _ in range(10):
        for n, end in enumerate((client, server)):
            try:
                end.do_handshake()
                done.add(n)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if done == {0, 1}:
            return True
    return False


def test_configured_certificate_files_are_loaded_again_when_they_change(tmp_path: Path) -> None:
    """A mounted Secret that cert-manager renews: new connections get the new certificate
    without a restart; a pair caught mid-change keeps the current one until it is whole."""
    first, _ = certs.ensure(tmp_path / "first", ["127.0.0.1"])
    second, _ = certs.ensure(tmp_path / "second", ["127.0.0.1"])
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    cert, key = mounted / "tls.crt", mounted / "tls.key"
    cert.write_bytes(first.cert.read_bytes())
    key.write_bytes(first.key.read_bytes())
    settings = Settings(data=tmp_path / "data", webhook_cert_file=cert, webhook_key_file=key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    renewer = webhook_tls.Renewer(settings, context)
    assert renewer.check() is False  # unchanged: nothing loaded
    assert _served_by(context, first.ca) and not _served_by(context, second.ca)

    cert.write_bytes(second.cert.read_bytes())  # the key is still the old one
    with pytest.raises(ssl.SSLError):
        renewer.check()
    assert _served_by(context, first.ca)
    key.write_bytes(second.key.read_bytes())
    assert renewer.check() is True
    assert _served_by(context, second.ca) and not _served_by(context, first.ca)
    assert renewer.check() is False
