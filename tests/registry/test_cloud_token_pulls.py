"""A credential holding an ECR identity, used by a real client: skopeo copies an image from a
real registry (distribution, token auth over TLS) with the login the server delivers, before
and after the refresher makes a new token, and while its refreshes fail.

The registry's token server takes user AWS with the ECR stand-in's newest token only
(tests/cloud/aws.py's `issued[-1]`): one it has since replaced is refused, as ECR refuses
an expired one. The server keeps ECR credentials to ECR's own addresses
(ACCOUNT.dkr.ecr.REGION.amazonaws.com), which a registry on loopback cannot have, and that
check stays: the login is delivered for the ECR address, and skopeo is handed an auth file
giving the same user name and password to the loopback registry. What is proven is the
login the server delivers, not the address it is keyed under.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pullkeeper.services import credentials
from pullkeeper.services.token_refresh import Refresher
from tests.cloud.aws import Aws
from tests.integration.conftest import Result
from tests.registry.servers import APP, LAYOUT_TAG, TokenRegistry
from tests.registry.token_server import Grant, TokenServer
from tests.server.conftest import Env
from tests.server.test_cloud_credentials import (  # noqa: F401
    ADMIN_KEY,
    ECR,
    Clock,
    at,
    cloud,
    ecr_body,
    puller,
)


@pytest.fixture
def ecr_logins(token_server: TokenServer, cloud: Aws) -> TokenServer:  # noqa: F811
    """The token server takes user AWS with the stand-in's newest token (and no other) and
    lets it pull team-a/*."""
    token_server.accept(
        "AWS",
        lambda: cloud.issued[-1] if cloud.issued else None,
        [
            Grant(
                user="AWS",
                resource_type="repository",
                pattern="team-a/*",
                actions=frozenset({"pull"}),
            )
        ],
    )
    return token_server


def login_file(env: Env, credential_id: str, registry: TokenRegistry, path: Path) -> Path:
    """The credential's delivered login (its dockerconfigjson, as the API answers it), keyed
    to the loopback registry instead of the ECR address."""
    answer = env.admin.get(f"credentials/{credential_id}/dockerconfigjson")
    assert answer.status_code == 200, answer.text
    auths = json.loads(answer.content)["auths"]
    assert list(auths) == [ECR], auths
    path.write_text(json.dumps({"auths": {registry.host: auths[ECR]}}))
    return path


def password_in(path: Path) -> str:
    password: str = json.loads(path.read_text())["auths"].popitem()[1]["password"]
    return password


def pull(registry: TokenRegistry, authfile: Path, into: Path) -> Result:
    """skopeo copies team-a/app:v1 into an OCI layout with the auth file's login."""
    return registry.skopeo(
        "copy",
        "--quiet",
        *registry.tls_args("src-"),
        "--src-authfile",
        str(authfile),
        f"docker://{registry.ref(APP)}",
        f"oci:{into}:{LAYOUT_TAG}",
    )


def pulled_digest(layout: Path) -> str:
    digest: str = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    return digest


def refused(result: Result) -> bool:
    return result.returncode != 0 and "unauthorized" in result.stderr.lower()


def test_each_new_token_pulls_and_the_one_it_replaced_is_refused(
    env: Env,
    cloud: Aws,  # noqa: F811
    token_registry: TokenRegistry,
    ecr_logins: TokenServer,
    tmp_path: Path,
) -> None:
    made = env.admin.ok("POST", "credentials", json=ecr_body(env, ADMIN_KEY))
    first = login_file(env, made["id"], token_registry, tmp_path / "first.json")
    assert password_in(first) == cloud.issued[-1]
    done = pull(token_registry, first, tmp_path / "pulled-1")
    assert done.returncode == 0, done.describe()
    assert pulled_digest(tmp_path / "pulled-1") == token_registry.image(APP).digest

    clock = Clock(at(made["identity"]["token"]["refresh_at"]))
    refresher = Refresher(env.server, clock=clock, leading=lambda: True)
    assert refresher.run_once() == {"refreshed": 1}
    second = login_file(env, made["id"], token_registry, tmp_path / "second.json")
    assert password_in(second) == cloud.issued[-1] != password_in(first)

    # The login delivered before is refused by the registry's token server now...
    stale = pull(token_registry, first, tmp_path / "pulled-stale")
    assert refused(stale), stale.describe()
    assert ecr_logins.requests[-1].username == "AWS"
    assert ecr_logins.requests[-1].status == 401
    # ...and the credential's current one pulls.
    done = pull(token_registry, second, tmp_path / "pulled-2")
    assert done.returncode == 0, done.describe()
    assert pulled_digest(tmp_path / "pulled-2") == token_registry.image(APP).digest
    assert ecr_logins.requests[-1].status == 200


def test_a_failing_refresh_alerts_while_the_current_token_still_pulls(
    env: Env,
    cloud: Aws,  # noqa: F811
    token_registry: TokenRegistry,
    ecr_logins: TokenServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = puller(cloud)
    with cloud.enforcing_iam():
        made = env.admin.ok("POST", "credentials", json=ecr_body(env, key))
    # The identity loses its right to make tokens (a policy removed in IAM).
    iam = boto3.session.Session(*ADMIN_KEY, region_name="us-east-1").client(
        "iam", endpoint_url=cloud.url
    )
    iam.delete_user_policy(UserName="puller", PolicyName="p")

    token = made["identity"]["token"]
    issued, expires = at(token["issued_at"]), at(token["expires_at"])
    # Past the refresh time, with less than a quarter of the token's life left.
    clock = Clock(expires - (expires - issued) / 5)
    monkeypatch.setattr(credentials, "utcnow", clock)  # the API's view, as of the same clock

    def shown() -> dict[str, Any]:
        found: dict[str, Any] = env.admin.ok("GET", f"credentials/{made['id']}")["identity"][
            "token"
        ]
        return found

    assert shown()["state"] == "valid"
    refresher = Refresher(env.server, clock=clock, leading=lambda: True)
    with cloud.enforcing_iam():
        assert refresher.run_once() == {"failed": 1}
    after = shown()
    assert after["state"] == "alert" and after["failures"] == 1
    error = after["last_error"]
    assert error["cause"] == "denied", error
    assert "ecr:GetAuthorizationToken" in error["message"]
    assert at(after["refresh_at"]) < expires  # tried again before it expires
    # The token made before is the credential's login still, and the registry takes it.
    current = login_file(env, made["id"], token_registry, tmp_path / "current.json")
    assert cloud.issued == [password_in(current)]
    done = pull(token_registry, current, tmp_path / "pulled")
    assert done.returncode == 0, done.describe()
    assert pulled_digest(tmp_path / "pulled") == token_registry.image(APP).digest
