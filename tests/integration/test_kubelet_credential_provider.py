"""`pullkeeper kubelet-credential-provider`, run as the kubelet runs it: the real executable,
the request the kubelet writes on its standard input, the answer it reads back; and the
kubelet's own credential provider code (v1.34) running it and using its answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Kubelet, Result, assert_one_line_error, b64, kubelet_request, pk

pytestmark = pytest.mark.integration

COMMAND = "kubelet-credential-provider"
PASSWORD = "s3cr&t-Pw9"  # looked for in every output
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "auths": {
                    "quay.io": {"auth": b64(f"alice:{PASSWORD}")},
                    "https://quay.io/v2/team-a": {"auth": b64("team-a:team-pw")},
                    "*.example.com:5000": {"username": "wild", "password": "wild-pw"},
                    "https://index.docker.io/v1/": {"auth": b64("hub:hub-pw")},
                }
            }
        )
    )
    return path


def provide(config: Path | str, stdin: bytes, *options: str) -> Result:
    return pk(COMMAND, "--config", str(config), *options, stdin=stdin)


def answered(result: Result) -> str:
    assert result.returncode == 0, result.describe()
    assert result.err == b"", result.describe()
    return result.stdout


def test_the_answer_to_the_kubelets_request(config: Path) -> None:
    out = answered(provide(config, kubelet_request("quay.io/team-a/app")))
    assert out == (
        '{"kind":"CredentialProviderResponse",'
        '"apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
        '"cacheKeyType":"Registry","cacheDuration":"5m0s","auth":{'
        '"quay.io":{"username":"alice","password":"s3cr\\u0026t-Pw9"},'
        '"quay.io/team-a":{"username":"team-a","password":"team-pw"}}}\n'
    )


def test_cache_options(config: Path) -> None:
    request = kubelet_request("a.example.com:5000/x")
    out = answered(provide(config, request, "--cache-key-type", "Image", "--cache-duration", "90m"))
    assert out == (
        '{"kind":"CredentialProviderResponse",'
        '"apiVersion":"credentialprovider.kubelet.k8s.io/v1",'
        '"cacheKeyType":"Image","cacheDuration":"1h30m0s",'
        '"auth":{"*.example.com:5000":{"username":"wild","password":"wild-pw"}}}\n'
    )
    out = answered(provide(config, request, "--cache-key-type", "Global", "--cache-duration", "0"))
    doc = json.loads(out)
    assert (doc["cacheKeyType"], doc["cacheDuration"]) == ("Global", "0s")
    assert set(doc["auth"]) == {
        "quay.io",
        "quay.io/team-a",
        "*.example.com:5000",
        "index.docker.io",
    }


def test_docker_hub_answers_carry_the_fallback(config: Path) -> None:
    doc = json.loads(answered(provide(config, kubelet_request("docker.io/library/nginx"))))
    assert doc["auth"] == {"index.docker.io": {"username": "hub", "password": "hub-pw"}}


def test_no_credential_is_an_empty_answer(config: Path) -> None:
    out = answered(provide(config, kubelet_request("gcr.io/project/image")))
    assert out.endswith('"cacheDuration":"5m0s","auth":{}}\n')


def test_a_service_account_token_goes_nowhere(config: Path) -> None:
    request = json.dumps(
        {
            "kind": "CredentialProviderRequest",
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "image": "quay.io/team-b/app",
            "serviceAccountToken": TOKEN,
            "serviceAccountAnnotations": {"example.com/role": "puller"},
        }
    ).encode()
    out = answered(provide(config, request))
    # The answer serves every image of quay.io (Registry), team-a's too.
    assert set(json.loads(out)["auth"]) == {"quay.io", "quay.io/team-a"}
    assert TOKEN not in out
    broken = request.replace(b'"kind": "CredentialProviderRequest"', b'"kind": "Other"')
    result = provide(config, broken)
    assert_one_line_error(result, 1)
    assert TOKEN not in result.stdout + result.stderr


def test_a_secret_manifest_as_the_file(tmp_path: Path) -> None:
    payload = json.dumps({"auths": {"quay.io": {"auth": b64("bob:bob-pw")}}})
    manifest = tmp_path / "regcred.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n"
        "type: kubernetes.io/dockerconfigjson\n"
        f"data:\n  .dockerconfigjson: {b64(payload)}\n"
    )
    doc = json.loads(answered(provide(manifest, kubelet_request("quay.io/a"))))
    assert doc["auth"] == {"quay.io": {"username": "bob", "password": "bob-pw"}}


def failed(result: Result) -> str:
    """No answer: exit status 1, nothing on stdout, one line on stderr, no secret anywhere."""
    line = assert_one_line_error(result, 1)
    assert result.out == b"", result.describe()
    assert PASSWORD not in result.stderr
    assert line.startswith("error: "), line
    return line


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"", "error: the request is not JSON (Expecting value: line 1 column 1 (char 0)): "),
        (
            kubelet_request("quay.io/a").replace(b"/v1", b"/v1beta1"),
            'error: the request has apiVersion "credentialprovider.kubelet.k8s.io/v1beta1", not '
            '"credentialprovider.kubelet.k8s.io/v1": give the provider apiVersion: '
            "credentialprovider.kubelet.k8s.io/v1 in the kubelet's CredentialProviderConfig",
        ),
        (
            kubelet_request(""),
            "error: the request has no image: the kubelet writes a CredentialProviderRequest",
        ),
        (
            kubelet_request("Quay.io/A"),
            'error: the request\'s image "Quay.io/A" is not a valid image reference',
        ),
    ],
)
def test_a_request_the_kubelet_would_not_send(config: Path, stdin: bytes, message: str) -> None:
    assert failed(provide(config, stdin)).startswith(message)


def test_an_unreadable_config(tmp_path: Path) -> None:
    line = failed(provide(tmp_path / "absent.json", kubelet_request("quay.io/a")))
    assert line == (
        f"error: {tmp_path / 'absent.json'}: cannot read: No such file or directory; fix the "
        "file, or the --config in this provider's args in the kubelet's CredentialProviderConfig"
    )


def test_a_config_the_kubelet_would_refuse(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"auths": {"quay.io": {"auth": PASSWORD}}}))
    line = failed(provide(bad, kubelet_request("quay.io/a")))
    assert line.startswith(f'error: {bad}: auths["quay.io"]: the auth field is not base64')


def test_standard_input_is_the_request_not_the_config() -> None:
    line = failed(provide("-", kubelet_request("quay.io/a")))
    assert line == (
        "error: --config -: standard input carries the kubelet's request; give the path of a file"
    )


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("1d", 'time: unknown unit "d" in duration "1d"; give a Go duration such as 5m'),
        ("-5m", "-5m is negative; 0 tells the kubelet not to cache"),
    ],
)
def test_a_cache_duration_that_is_no_go_duration(config: Path, duration: str, message: str) -> None:
    result = provide(config, kubelet_request("quay.io/a"), "--cache-duration", duration)
    assert result.returncode == 2, result.describe()
    assert result.out == b""
    assert message in result.stderr


# --------------------------------------------------------------------------- the kubelet's code


def test_the_kubelet_uses_the_answers_and_caches_them(config: Path, kubelet: Kubelet) -> None:
    kubelet.install("--config", str(config))
    found, _ = kubelet.lookup(
        "quay.io/team-a/app",
        "quay.io/team-b/app",
        "quay.io/team-a/app",
        "docker.io/library/nginx",
        "a.example.com:5000/x",
        "b.example.com:5000/y",
        "gcr.io/project/image",
        "registry.example.org/app",
    )
    assert found == {
        # The most specific key first, as for a pull secret.
        "quay.io/team-a/app": [("team-a", "team-pw"), ("alice", PASSWORD)],
        # From the answer cached for quay.io (Registry): team-a's key does not match.
        "quay.io/team-b/app": [("alice", PASSWORD)],
        "docker.io/library/nginx": [("hub", "hub-pw")],
        "a.example.com:5000/x": [("wild", "wild-pw")],
        "b.example.com:5000/y": [("wild", "wild-pw")],
        "gcr.io/project/image": [],  # an empty answer: an anonymous pull
        "registry.example.org/app": [],  # not in matchImages: pullkeeper is not run
    }
    # Once per registry: quay.io, docker.io, a.example.com:5000, b.example.com:5000, gcr.io.
    assert kubelet.runs == 5


def test_an_answer_not_to_cache_is_asked_for_again(config: Path, kubelet: Kubelet) -> None:
    kubelet.install("--config", str(config), "--cache-key-type", "Image", "--cache-duration", "0")
    found, _ = kubelet.lookup("quay.io/team-a/app", "quay.io/team-a/app")
    assert found["quay.io/team-a/app"] == [("team-a", "team-pw"), ("alice", PASSWORD)]
    assert kubelet.runs == 2


def test_a_failure_is_in_the_kubelets_log(tmp_path: Path, kubelet: Kubelet) -> None:
    kubelet.install("--config", str(tmp_path / "absent.json"))
    found, result = kubelet.lookup("quay.io/team-a/app")
    assert found == {"quay.io/team-a/app": []}
    assert f"error: {tmp_path / 'absent.json'}: cannot read: No such file or directory" in (
        result.stderr
    )
