"""All of the server's configuration, in one model: flags over environment over a file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import Field, FilePath, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pullkeeper.core import egress
from pullkeeper.core.cloud import GOOGLE_TOKEN_URI

__all__ = ["Settings"]

# The admin's first token never expires: as hard to guess as a generated one.
_MIN_ADMIN_TOKEN = 32


class Settings(BaseSettings):
    """`pullkeeper serve` settings. Environment variables are `PULLKEEPER_<NAME>`."""

    # An error never repeats the value it refuses: some settings are secrets.
    model_config = SettingsConfigDict(
        env_prefix="PULLKEEPER_", extra="forbid", hide_input_in_errors=True
    )

    data: Path = Field(Path(".pullkeeper"), description="Data directory (SQLite file, keys).")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means SQLite in the data directory."
    )

    # The encryption keys of secret material (docs/server.md: "Secrets at rest"). Every server on
    # one store needs the same keys; the store records which keys its secrets need, and a
    # server without them refuses to start.
    keys_dir: Path | None = Field(
        None,
        description="Directory of the encryption keys, one `*.key` file each (32 random "
        "bytes or their base64), e.g. a mounted Secret; default DATA/keys.",
    )
    keys: SecretStr | None = Field(
        None,
        description="The encryption keys themselves instead of keys_dir: base64 keys "
        "separated by commas (PULLKEEPER_KEYS).",
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    admin_token: SecretStr | None = Field(
        None,
        description="At first start, the admin's API token instead of a generated one "
        f"(at least {_MIN_ADMIN_TOKEN} characters, no spaces).",
    )

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # Messages never repeat the token; an empty one means none was given.
        token = value.get_secret_value() if value is not None else ""
        if not token:
            return None
        if len(token) < _MIN_ADMIN_TOKEN:
            raise PydanticCustomError(
                "admin_token_short",
                "the admin token has {length} characters; it needs at least {minimum}: "
                "make a random one with `openssl rand -hex 32`",
                {"length": len(token), "minimum": _MIN_ADMIN_TOKEN},
            )
        if not all(c.isascii() and c.isprintable() and c != " " for c in token):
            raise PydanticCustomError(
                "admin_token_characters",
                "the admin token holds spaces, control or non-ASCII characters, which an "
                "Authorization header cannot carry: make one with `openssl rand -hex 32`",
            )
        return value

    max_body_bytes: int = Field(1 << 20, ge=1024, description="Larger request bodies get 413.")
    token_ttl_days: int = Field(90, ge=1, description="Default lifetime of new API tokens.")
    login_attempts_per_minute: int = Field(5, ge=1, description="Failed logins per user and IP.")
    log_level: str = "info"
    insecure_registries: list[str] = Field(
        default_factory=list,
        description="Registries (host[:port]) checked over HTTPS without verification, else "
        "plain HTTP, as Docker's --insecure-registry.",
    )
    egress_allow: list[str] = Field(
        default_factory=list,
        description="Destinations the server may connect to for registry requests although "
        "refused by default (loopback, link-local, its own listeners with their port): host "
        "names, *.wildcards, addresses or networks, each with an optional :port.",
    )
    egress_deny: list[str] = Field(
        default_factory=list,
        description="Destinations the server never connects to for registry requests (same "
        "forms; the most specific entry of the two settings wins).",
    )
    # Where cloud identities are exchanged for registry tokens (core/cloud.py): the clouds'
    # own endpoints unless set here; a credential never chooses them.
    cloud_aws_endpoint: str | None = Field(
        None,
        description="ECR's and STS's endpoint URL instead of AWS's regional ones (a VPC "
        "endpoint, a partition's own).",
    )
    cloud_google_token_uris: list[str] = Field(
        default_factory=lambda: [GOOGLE_TOKEN_URI],
        description="The token endpoints a GCR service-account key may name as its "
        "token_uri; a key naming another is refused before anything is sent.",
    )
    cloud_azure_authority: str | None = Field(
        None,
        description="The Microsoft Entra authority host for ACR identities instead of "
        "login.microsoftonline.com (a national cloud).",
    )
    cloud_ca_file: FilePath | None = Field(
        None, description="A CA bundle the token exchanges trust instead of the system's."
    )
    token_refresh: bool = Field(
        True,
        description="Refresh the tokens of credentials holding a cloud identity (in the "
        "replica that syncs, or one replica when the sync is off).",
    )
    token_refresh_poll_seconds: float = Field(
        30.0, ge=1, le=3600, description="How often the refresher looks for tokens due."
    )
    token_refresh_workers: int = Field(
        4, ge=1, le=64, description="Token exchanges the refresher runs at once."
    )
    request_threads: int = Field(
        4, ge=1, le=256, description="Threads that run requests; few keep the GIL uncontended."
    )
    auth_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a token's actor is reused; other server processes on the same "
        "store see a revocation within this time (0: never cache).",
    )

    sync: bool = Field(
        True, description="Keep the registered clusters' Secrets in step with the store."
    )
    sync_resync_seconds: float = Field(
        600.0, ge=1, description="Full resync of every cluster, repairing what watches missed."
    )
    sync_poll_seconds: float = Field(
        2.0,
        ge=0.1,
        description="How often to look for changes other server processes made to the store.",
    )
    sync_lease_seconds: float = Field(
        15.0,
        ge=3,
        description="With several replicas on one store, one syncs: it holds a lease this long "
        "and renews it; when it stops or dies, another takes over within this time.",
    )
    sync_excluded_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"],
        description="Namespaces cluster-wide credentials are not delivered to (a namespace "
        "labelled pullkeeper.io/exclude=true is excluded too).",
    )

    admission_refresh_seconds: float = Field(
        1.0,
        ge=0.1,
        description="How often the webhook's index looks for other processes' store changes.",
    )
    admission_check_seconds: float = Field(
        600.0,
        ge=1,
        description="How often the webhook's index, kept current change by change, is compared "
        "with a fresh build of the store; a difference is logged, counted and repaired.",
    )
    admission_templates: bool = Field(
        True, description="Also mutate and validate the pod templates of workloads."
    )
    admission_excluded_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "pullkeeper"],
        description="Namespaces the webhook passes through untouched (its own among them).",
    )
    admission_decide_timeout: float = Field(
        2.0, gt=0, description="How long a review may wait for the index before the failure mode."
    )
    admission_validate_failure_policy: str = Field(
        "Fail",
        pattern="^(Fail|Ignore)$",
        description="An undecidable validation: deny (Fail) or allow (Ignore).",
    )
    webhook_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the TLS listener for the admission webhook (0: off).",
    )
    webhook_cert_file: Path | None = Field(
        None, description="The webhook's TLS certificate (default: generated in DATA/webhook)."
    )
    webhook_key_file: Path | None = None
    webhook_hosts: list[str] = Field(
        default_factory=lambda: [
            "pullkeeper.pullkeeper.svc",
            "pullkeeper.pullkeeper.svc.cluster.local",
            "localhost",
            "127.0.0.1",
        ],
        description="Names the generated certificate is valid for (the Service's DNS names).",
    )

    # Who may call what: the webhook's clients, the proxies whose forwarded headers count;
    # what admission may write to the audit trail.
    webhook_client_ca: FilePath | None = Field(
        None,
        description="CA certificates (PEM) that sign the client certificate the webhook listener "
        "requires of every caller: the API server's (unset: any client is answered).",
    )
    admission_audit_per_minute: int = Field(
        20,
        ge=1,
        description="Admission audit records (denials, warnings, findings) per namespace a "
        "minute, after a burst of as many; more are counted in "
        "pullkeeper_admission_audit_dropped_total, not written.",
    )
    admission_audit_queue: int = Field(
        1000,
        ge=1,
        description="Admission audit records waiting to be written (a thread writes them, "
        "at least every second); a record that finds the queue full is counted in "
        "pullkeeper_admission_audit_overflow_total, not written.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of the reverse proxies in front of the API "
        "whose X-Forwarded-For and X-Forwarded-Proto are believed; from anyone else (by "
        "default, everyone) they are ignored.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (such as 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("egress_allow", "egress_deny")
    @classmethod
    def _egress_entries(cls, value: list[str], info: ValidationInfo) -> list[str]:
        try:
            if info.field_name == "egress_allow":
                egress.EgressPolicy.parse(allow=value)
            else:
                egress.EgressPolicy.parse(deny=value)
        except egress.EgressError as e:
            raise ValueError(str(e).split(": ", 1)[1]) from None
        return value

    @property
    def egress(self) -> egress.EgressPolicy:
        """Where the server may connect on a user's behalf (core/egress.py)."""
        return egress.EgressPolicy.parse(
            self.egress_allow, self.egress_deny, (self.port, self.webhook_port)
        )

    @model_validator(mode="after")
    def _one_key_source(self) -> Settings:
        if self.keys is not None and self.keys_dir is not None:
            raise ValueError("keys and keys_dir are two sources of the encryption keys: give one")
        if self.keys is not None and not self.keys.get_secret_value().strip():
            raise ValueError("keys is empty: give base64 keys separated by commas, or unset it")
        return self

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data / 'pullkeeper.db').resolve()}"
        # psycopg 3 is the PostgreSQL driver pullkeeper installs.
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Settings from flags (overrides) over PULLKEEPER_* over the TOML file over defaults."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if config_file is None:
            return cls(**given)

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            @classmethod
            def settings_customise_sources(
                cls,
                settings_cls: type[BaseSettings],
                init_settings: PydanticBaseSettingsSource,
                env_settings: PydanticBaseSettingsSource,
                dotenv_settings: PydanticBaseSettingsSource,
                file_secret_settings: PydanticBaseSettingsSource,
            ) -> tuple[PydanticBaseSettingsSource, ...]:
                toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
                return (init_settings, env_settings, toml)

        loaded: Settings = _FromFile(**given)
        return cls.model_validate(loaded.model_dump())
