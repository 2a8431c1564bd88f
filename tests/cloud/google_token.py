"""Google's OAuth 2.0 token endpoint, as service-account keys use it: the JWT-bearer grant
(RFC 7523; https://developers.google.com/identity/protocols/oauth2/service-account#httprest).

The client signs a JWT with the key's private half (RS256, `kid` the private_key_id; claims
iss = client_email, scope, aud = Google's token URI whichever the key names (google-auth sends
that one, and Google checks it), iat, exp at most an hour later) and POSTs it as
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`. The answer is
`{"access_token", "expires_in": 3599, "token_type": "Bearer"}`, or a 400 `invalid_grant` whose
description is Google's own wording: "Invalid JWT Signature." (a deleted or wrong key) and
"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe..."
(the client's clock is not the endpoint's).
"""

from __future__ import annotations

import json
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pullkeeper.core.cloud import GOOGLE_TOKEN_URI
from tests.cloud.standin import Answer, StandIn

TOKEN_PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
EXPIRES_IN = 3599
# How far an assertion's iat may be ahead of the endpoint's clock, and the longest life it may
# ask for (Google allows an hour).
_SKEW = 300
_MOST_LIFE = 3600

SIGNATURE = "Invalid JWT Signature."
TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


@dataclass(frozen=True, kw_only=True)
class ServiceAccountKey:
    """A service-account JSON key the endpoint knows (or, made by `wrong_key`, does not)."""

    info: dict[str, str]

    @property
    def json(self) -> str:
        return json.dumps(self.info)

    @property
    def private_key(self) -> str:
        return self.info["private_key"]

    def pointing_at(self, token_uri: str) -> ServiceAccountKey:
        return ServiceAccountKey(info={**self.info, "token_uri": token_uri})


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class GoogleTokenEndpoint(StandIn):
    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(tls)
        # private_key_id -> (client_email, public key)
        self._keys: dict[str, tuple[str, rsa.RSAPublicKey]] = {}
        # How far ahead of this host's clock the endpoint's clock is.
        self.clock_offset = 0.0
        self.issued: list[str] = []
        self.claims: list[dict[str, Any]] = []

    @property
    def token_uri(self) -> str:
        return self.url + TOKEN_PATH

    def service_account_key(self, name: str = "puller") -> ServiceAccountKey:
        """A new key of a service account of project pk-test, known to the endpoint."""
        key = _rsa_key()
        key_id = secrets.token_hex(20)
        email = f"{name}@pk-test.iam.gserviceaccount.com"
        with self._lock:
            self._keys[key_id] = (email, key.public_key())
        return ServiceAccountKey(
            info={
                "type": "service_account",
                "project_id": "pk-test",
                "private_key_id": key_id,
                "private_key": _pem(key),
                "client_email": email,
                "client_id": str(secrets.randbelow(10**21)),
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.token_uri,
                "universe_domain": "googleapis.com",
            }
        )

    @staticmethod
    def wrong_key(key: ServiceAccountKey) -> ServiceAccountKey:
        """`key` with another private key: what a deleted or mistyped key looks like."""
        return ServiceAccountKey(info={**key.info, "private_key": _pem(_rsa_key())})

    def answer(self, method: str, path: str, form: dict[str, str]) -> Answer:
        if (method, path) != ("POST", TOKEN_PATH):
            return 404, {"error": "not_found"}
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant"}
        assertion = form.get("assertion", "")
        try:
            key_id = jwt.get_unverified_header(assertion).get("kid", "")
        except jwt.InvalidTokenError:
            return 400, _invalid_grant("Invalid JWT: not a JWT.")
        with self._lock:
            known = self._keys.get(key_id)
        if known is None:
            return 400, _invalid_grant(SIGNATURE)
        email, public_key = known
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                audience=GOOGLE_TOKEN_URI,
                issuer=email,
                # Time is judged below, by the endpoint's own clock.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "aud", "iat", "exp", "scope"],
                },
            )
        except jwt.InvalidSignatureError:
            return 400, _invalid_grant(SIGNATURE)
        except jwt.InvalidTokenError as e:
            return 400, _invalid_grant(f"Invalid JWT: {e}")
        now = time.time() + self.clock_offset
        iat, exp = claims["iat"], claims["exp"]
        if not (iat - _SKEW <= now < exp and exp - iat <= _MOST_LIFE):
            return 400, _invalid_grant(TIMEFRAME)
        token = "ya29." + secrets.token_urlsafe(48)
        with self._lock:
            self.issued.append(token)
            self.claims.append(claims)
        return 200, {"access_token": token, "expires_in": EXPIRES_IN, "token_type": "Bearer"}


def _invalid_grant(description: str) -> dict[str, Any]:
    return {"error": "invalid_grant", "error_description": description}
