"""Microsoft Entra ID and an Azure container registry's token exchange, as azure-identity (msal)
and pullkeeper speak to them.

Entra (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
msal reads the tenant's OpenID configuration at
`/{tenant}/v2.0/.well-known/openid-configuration` (an unknown tenant: 400 with AADSTS90002),
then POSTs the client-credentials grant to its token endpoint with `client_secret`, or with
`client_assertion`: a JWT the certificate's key signs (aud the token endpoint, iss = sub = the
client id, the certificate's thumbprint in `x5t`, SHA-1, as azure-identity has msal send it,
or `x5t#S256`), or the federated token of the pod for workload identity. Errors carry Entra's
AADSTS codes: 700016 (no such application in the tenant), 7000215 (wrong client secret),
700027 (an assertion that does not verify).

The registry (https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md): POST
`/oauth2/exchange` with `grant_type=access_token&service=REGISTRY&tenant=T&access_token=AAD`
answers `{"refresh_token": JWT}`, the JWT's exp three hours on; it takes only the Entra
tokens this stand-in of Entra issued.
"""

from __future__ import annotations

import base64
import datetime
import secrets
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.cloud.standin import Answer, StandIn

CLIENT_CREDENTIALS = "client_credentials"
JWT_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
REFRESH_LIFE = 3 * 3600


@dataclass(frozen=True, kw_only=True)
class Certificate:
    """A service principal's certificate: the PEM azure-identity takes (key and certificate)."""

    pem: str
    # base64url, as in the `x5t` and `x5t#S256` headers
    thumbprints: dict[str, str]
    public_key: rsa.RSAPublicKey


def make_certificate(client_id: str) -> Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"app {client_id}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return Certificate(
        pem=key_pem + cert_pem,
        thumbprints={
            "x5t": _b64url(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - a thumbprint
            "x5t#S256": _b64url(cert.fingerprint(hashes.SHA256())),
        },
        public_key=key.public_key(),
    )


@dataclass(kw_only=True)
class App:
    """An application registration (service principal) of a tenant."""

    tenant_id: str
    client_id: str
    secret: str = ""
    certificate: Certificate | None = None
    federated_token: str = ""  # what workload identity's token file holds


@dataclass
class _Issued:
    tenant_id: str
    client_id: str


class Entra(StandIn):
    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(tls)
        self._apps: dict[tuple[str, str], App] = {}
        self._tenants: set[str] = set()
        self._issued: dict[str, _Issued] = {}

    def tenant(self) -> str:
        tenant_id = str(uuid.uuid4())
        with self._lock:
            self._tenants.add(tenant_id)
        return tenant_id

    def app(self, tenant_id: str, **credential: Any) -> App:
        """A new application of the tenant, logging in with `secret`, `certificate` (True: a
        new one) or `federated_token`."""
        client_id = str(uuid.uuid4())
        if credential.pop("certificate", False):
            credential["certificate"] = make_certificate(client_id)
        app = App(tenant_id=tenant_id, client_id=client_id, **credential)
        with self._lock:
            self._apps[tenant_id, client_id] = app
        return app

    def token_endpoint(self, tenant_id: str) -> str:
        return f"{self.url}/{tenant_id}/oauth2/v2.0/token"

    @property
    def issued(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    def issued_to(self, token: str) -> _Issued | None:
        with self._lock:
            return self._issued.get(token)

    def answer(self, method: str, path: str, form: dict[str, str]) -> Answer:
        parts = path.strip("/").split("/")
        tenant_id = parts[0]
        with self._lock:
            known = tenant_id in self._tenants
        if not known:
            return 400, _error(
                "invalid_tenant",
                90002,
                f"Tenant '{tenant_id}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        if method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return 200, self._openid_configuration(tenant_id)
        if method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._token(tenant_id, form)
        return 404, {"error": "not_found"}

    def _openid_configuration(self, tenant_id: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant_id}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": self.token_endpoint(tenant_id),
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }

    def _token(self, tenant_id: str, form: dict[str, str]) -> Answer:
        if form.get("grant_type") != CLIENT_CREDENTIALS:
            return 400, _error("unsupported_grant_type", 70003, "The grant type is not supported")
        client_id = form.get("client_id", "")
        with self._lock:
            app = self._apps.get((tenant_id, client_id))
        if app is None:
            return 400, _error(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant_id}'.",
            )
        if not self._authenticated(app, form):
            if "client_secret" in form:
                return 401, _error(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID.",
                )
            return 401, _error(
                "invalid_client", 700027, "Client assertion failed signature validation."
            )
        if form.get("scope") != MANAGEMENT_SCOPE:
            return 400, _error("invalid_scope", 70011, "The provided scope is not valid.")
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(48)
        with self._lock:
            self._issued[token] = _Issued(tenant_id, client_id)
        return 200, {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token,
        }

    def _authenticated(self, app: App, form: dict[str, str]) -> bool:
        if "client_secret" in form:
            return bool(app.secret) and secrets.compare_digest(app.secret, form["client_secret"])
        if form.get("client_assertion_type") != JWT_ASSERTION:
            return False
        assertion = form.get("client_assertion", "")
        if app.federated_token:
            return secrets.compare_digest(app.federated_token, assertion)
        if app.certificate is None:
            return False
        try:
            header = jwt.get_unverified_header(assertion)
            jwt.decode(
                assertion,
                app.certificate.public_key,
                algorithms=["PS256", "RS256"],
                audience=self.token_endpoint(app.tenant_id),
                issuer=app.client_id,
                options={"require": ["aud", "iss", "sub", "exp", "jti"]},
            )
        except jwt.InvalidTokenError:
            return False
        # msal keeps base64's padding; Entra takes it either way.
        return any(
            str(header.get(name, "")).rstrip("=") == thumbprint
            for name, thumbprint in app.certificate.thumbprints.items()
        )


class Registry(StandIn):
    """An Azure container registry's /oauth2/exchange, trusting `entra`'s tokens."""

    def __init__(self, tls: ssl.SSLContext, entra: Entra) -> None:
        super().__init__(tls)
        self._entra = entra
        self._signing_key = secrets.token_bytes(32)
        self.refresh_tokens: list[str] = []
        # Claims of the refresh tokens issued from now on, over the defaults (None: left out).
        self.claims: dict[str, Any] = {}

    def decode(self, token: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token, self._signing_key, algorithms=["HS256"], audience=self.host
        )
        return claims

    def answer(self, method: str, path: str, form: dict[str, str]) -> Answer:
        if (method, path) != ("POST", "/oauth2/exchange"):
            return 404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]}
        if form.get("grant_type") != "access_token" or form.get("service") != self.host:
            return 400, {"errors": [{"code": "BAD_REQUEST", "message": "invalid request"}]}
        issued = self._entra.issued_to(form.get("access_token", ""))
        tenant = form.get("tenant")
        if issued is None or tenant not in (None, issued.tenant_id):
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}
        now = int(time.time())
        claims = {
            "jti": str(uuid.uuid4()),
            "sub": issued.client_id,
            "nbf": now,
            "exp": now + REFRESH_LIFE,
            "iat": now,
            "iss": "Azure Container Registry",
            "aud": self.host,
            "version": "1.0",
            "grant_type": "refresh_token",
            "tenant": issued.tenant_id,
            "permissions": {"actions": ["read"]},
        }
        with self._lock:
            claims.update(self.claims)
        token = jwt.encode(
            {k: v for k, v in claims.items() if v is not None}, self._signing_key, "HS256"
        )
        with self._lock:
            self.refresh_tokens.append(token)
        return 200, {"refresh_token": token}


def _error(error: str, code: int, description: str) -> dict[str, Any]:
    trace = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
    }


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
