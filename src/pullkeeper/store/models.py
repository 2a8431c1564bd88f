"""The tables. Secret material is only ever stored encrypted (see store/vault.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "ChangeLogEntry",
    "Cluster",
    "Credential",
    "CredentialCheck",
    "EncryptionKey",
    "Lease",
    "LoginFailure",
    "Namespace",
    "NodeProfile",
    "NodeState",
    "Policy",
    "Project",
    "RoleBinding",
    "StoredSecret",
    "SyncClusterError",
    "SyncStatus",
    "User",
    "utcnow",
]


def _new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class _UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: _UTCDateTime}  # noqa: RUF012 - SQLAlchemy reads it


class _Stamped:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class _Versioned:
    """A counter that every write of the row bumps: what an ETag names, what If-Match compares.

    SQLAlchemy writes each UPDATE and DELETE of the row as `... WHERE id = ? AND version = ?`
    with the version it read, and fails the flush (StaleDataError) when a concurrent writer
    got there first: the compare-and-write is one statement, on SQLite and PostgreSQL alike.
    Bulk UPDATEs (a check's result) leave it alone.
    """

    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    viewer: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Kept with their audit history, but no login and no token of theirs is accepted.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


# The kinds of API tokens: a user's own, or a node token bound to a cluster.
USER_TOKEN, NODE_TOKEN = "user", "node"


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # "user": acts as its user; "node": bound to one cluster (cluster_id), it reads that
    # cluster's node credentials and nothing else (its user_id: the admin who issued it).
    kind: Mapped[str] = mapped_column(String(8), default=USER_TOKEN, server_default=USER_TOKEN)
    cluster_id: Mapped[str | None] = mapped_column(
        ForeignKey("clusters.id", ondelete="CASCADE"), nullable=True, index=True
    )


class Cluster(_Stamped, _Versioned, Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # "kubeconfig" (path + context) or "in-cluster".
    access: Mapped[str] = mapped_column(String(16), default="kubeconfig")
    kubeconfig: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[str] = mapped_column(String(253), default="")
    # An uploaded kubeconfig (its one context, minified, as JSON), encrypted as credentials'
    # passwords; kubeconfig is then "" (no file). None for a path or in-cluster access.
    kubeconfig_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    kubeconfig_blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class Project(_Stamped, _Versioned, Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")


class Namespace(_Stamped, Base):
    __tablename__ = "namespaces"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), nullable=True, index=True
    )


class RoleBinding(Base):
    """A user's role in one project: owner, member or viewer."""

    __tablename__ = "role_bindings"
    __table_args__ = (UniqueConstraint("user_id", "project_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))


class Credential(_Stamped, _Versioned, Base):
    __tablename__ = "credentials"
    __table_args__ = (
        Index("ix_credentials_scope", "cluster_id", "scope", "project_id", "namespace"),
        # The listing's order, so pages (by keyset above all) are read from the index in order.
        Index("ix_credentials_name_id", "name", "id"),
        # The slots with more than one active credential, for the superseded filter.
        Index("ix_credentials_state_slot", "state", "slot"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    name: Mapped[str] = mapped_column(String(253))
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    # "namespace", "project" or "cluster".
    scope: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    namespace: Mapped[str | None] = mapped_column(String(63), nullable=True)
    provider: Mapped[str] = mapped_column(String(32))
    server: Mapped[str] = mapped_column(String(512))
    username: Mapped[str] = mapped_column(String(512), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="active")
    # Delivery may replace a same-named Secret that pullkeeper did not create.
    adopt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Token servers on other hosts the login may be sent to (core/realms.py).
    token_hosts: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    secret_key_id: Mapped[str] = mapped_column(String(32), index=True)
    secret_blob: Mapped[bytes] = mapped_column(LargeBinary)
    # Monotonic creation order; decides which of two same-address credentials is newer.
    seq: Mapped[int] = mapped_column(Integer, default=0, index=True)
    # The server as a kubelet keyring key: "quay.io" and "https://quay.io/" share one.
    address_key: Mapped[str] = mapped_column(String(512), default="", index=True)
    # Scope and address_key in one value: credentials sharing it supersede one another,
    # and one index lookup finds them all.
    slot: Mapped[str] = mapped_column(String(900), default="", index=True)
    # The last check of this credential against its registry: "ok" or "failing"; null: never.
    check_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    check_cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    check_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(_UTCDateTime, nullable=True)
    # A cloud identity held instead of a static password (core/cloud.py): its kind (aws,
    # gcp, azure; null: none), what of it is not secret, and its secret, encrypted as the
    # password is. The password is then the newest token the identity was exchanged for.
    identity_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    identity: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    identity_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    identity_blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # That token's life, when the next one is due, and the last failed exchange.
    token_issued_at: Mapped[datetime | None] = mapped_column(_UTCDateTime, nullable=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(_UTCDateTime, nullable=True)
    token_refresh_at: Mapped[datetime | None] = mapped_column(
        _UTCDateTime, nullable=True, index=True
    )
    token_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_error_cause: Mapped[str | None] = mapped_column(String(16), nullable=True)
    token_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Policy(_Stamped, _Versioned, Base):
    """Registry policy of a cluster (project_id null) or of one project."""

    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("cluster_id", "project_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    default_registry: Mapped[str | None] = mapped_column(String(512), nullable=True)
    allowlist: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    always_pull: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    service_accounts: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    require_digest: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    forbid_latest: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    mode: Mapped[str | None] = mapped_column(String(16), nullable=True)


class CredentialCheck(Base):
    """One check of a credential against its registry: a login, or a pull check's attempt.
    The last few per credential are kept (services/checks.py); never a secret."""

    __tablename__ = "credential_checks"
    __table_args__ = (Index("ix_credential_checks_credential_at", "credential_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    credential_id: Mapped[str] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # login, or pull (of `image`)
    image: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    actor: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16))  # ok or failing
    cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class LoginFailure(Base):
    """A failed login (or current-password check), counted by the login throttle."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_who", "username", "source", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Lease(Base):
    """Who does a job that one replica at a time must do (the Kubernetes sync), until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class SyncStatus(Base):
    """Where one credential's Secret stands in one namespace, as the syncing replica last saw
    it; every replica reads it from here."""

    __tablename__ = "sync_statuses"
    __table_args__ = (Index("ix_sync_statuses_place", "cluster_id", "namespace"),)

    credential_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(253))
    secret: Mapped[str] = mapped_column(String(253))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime] = mapped_column()


class SyncClusterError(Base):
    """A cluster the syncing replica cannot reach, and why."""

    __tablename__ = "sync_cluster_errors"

    cluster_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    message: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64), default="")
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ChangeLogEntry(Base):
    """One typed change a committed transaction made (store/changes.py): how other processes
    learn what changed. Ids are never reused, so a reader can tell what it missed."""

    __tablename__ = "change_log"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    cluster_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    namespace: Mapped[str | None] = mapped_column(String(63), nullable=True)


class EncryptionKey(Base):
    """A key the store's secrets were (or are to be) encrypted with: never the key itself.

    `id` is what records carry as secret_key_id: the key's fingerprint, or, for a key made
    before ids were fingerprints, its old id. Exactly one row is current."""

    __tablename__ = "encryption_keys"
    __table_args__ = (
        Index(
            "ux_encryption_keys_current",
            "current",
            unique=True,
            sqlite_where=text('"current"'),
            postgresql_where=text('"current"'),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    current: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredSecret(Base):
    """Secret material of the server itself (the content-hash key), encrypted as credentials'."""

    __tablename__ = "stored_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_key_id: Mapped[str] = mapped_column(String(32), index=True)
    secret_blob: Mapped[bytes] = mapped_column(LargeBinary)


class NodeProfile(_Stamped, _Versioned, Base):
    """What a cluster's nodes (those its node_selector matches) are configured with: each
    registry's CA, insecurity and mirrors (as a node profile file's `registries`), and the
    names of the cluster's credentials of cluster scope that become their logins."""

    __tablename__ = "node_profiles"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_new_id)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    node_selector: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    registries: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    credentials: Mapped[list[str]] = mapped_column(JSON, default=list)
    mirror_default_registry: Mapped[bool] = mapped_column(Boolean, default=False)


class NodeState(Base):
    """What a node's agent last said about its files: applied, drifted or failed."""

    __tablename__ = "node_states"
    __table_args__ = (UniqueConstraint("cluster_id", "node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    node: Mapped[str] = mapped_column(String(253))
    profile: Mapped[str] = mapped_column(String(63), default="")
    digest: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)
