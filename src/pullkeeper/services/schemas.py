"""The request bodies both faces check their input with: the API's JSON bodies, the pages'
forms. Unknown fields are refused so a typo is an error, not a silent no-op."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pullkeeper.core.cloud import CloudLogin
from pullkeeper.core.workloads import Container
from pullkeeper.services import workloads
from pullkeeper.services.credentials import CredentialSpec, Scope
from pullkeeper.services.node_profiles import NodeProfileSpec

__all__ = [
    "CHECK_CONFIG_LIMIT",
    "CheckIn",
    "ClusterIn",
    "ClusterPatch",
    "ContainerIn",
    "CredentialIn",
    "CredentialPatch",
    "IdentityIn",
    "LoginIn",
    "MemberIn",
    "NamespaceIn",
    "NodeProfileIn",
    "NodeReportIn",
    "PasswordIn",
    "PolicyIn",
    "ProjectIn",
    "ProjectPatch",
    "TokenIn",
    "UserIn",
    "WorkloadIn",
]

# A check's credential file: a docker config or a few Secret manifests; anything bigger is not one.
CHECK_CONFIG_LIMIT = 256 * 1024


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any, info: ValidationInfo) -> Any:
        # No store keeps a NUL in text (PostgreSQL refuses it), so no field may hold one.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise ValueError("must not contain NUL characters")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields a PATCH sets; an absent or null field is left as it is."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class LoginIn(_Body):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserIn(_Body):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    admin: bool = False
    viewer: bool = False


class PasswordIn(_Body):
    password: str = Field(max_length=1024)


class TokenIn(_Body):
    name: str = Field("", max_length=64)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class NodeProfileIn(_Body):
    """A node profile: `registries` as in a node profile file (checked by its own rules)."""

    name: str = Field(max_length=63)
    description: str = Field("", max_length=1024)
    node_selector: dict[str, str] = Field(default_factory=dict, max_length=32)
    registries: list[Any] = Field(default_factory=list, max_length=256)
    credentials: list[str] = Field(default_factory=list, max_length=64)
    mirror_default_registry: bool = False

    def spec(self) -> NodeProfileSpec:
        return NodeProfileSpec(
            self.name,
            self.description,
            dict(self.node_selector),
            list(self.registries),
            list(self.credentials),
            self.mirror_default_registry,
        )


class NodeReportIn(_Body):
    cluster: str = Field(max_length=63)
    node: str = Field(max_length=253)
    profile: str | None = Field(None, max_length=63)
    digest: str = Field("", max_length=64)
    state: str = Field(max_length=16)
    detail: str = Field("", max_length=8192)


class MemberIn(_Body):
    role: str = Field(max_length=16)


class ClusterIn(_Body):
    name: str = Field(max_length=63)
    description: str = Field("", max_length=4096)
    access: str = Field("kubeconfig", max_length=16)
    kubeconfig: str = Field("", max_length=4096)
    context: str = Field("", max_length=253)


class ClusterPatch(_Body):
    name: str | None = Field(None, max_length=63)
    description: str | None = Field(None, max_length=4096)
    access: str | None = Field(None, max_length=16)
    kubeconfig: str | None = Field(None, max_length=4096)
    context: str | None = Field(None, max_length=253)


class ProjectIn(_Body):
    name: str = Field(max_length=63)
    cluster: str = Field(max_length=63, description="Cluster name or id.")
    description: str = Field("", max_length=4096)


class ProjectPatch(_Body):
    name: str | None = Field(None, max_length=63)
    description: str | None = Field(None, max_length=4096)


class NamespaceIn(_Body):
    project: str | None = Field(None, max_length=63, description="Project name or id, or null.")


class IdentityIn(_Body):
    """A cloud identity an ECR, GCR / Artifact Registry or ACR credential logs in with
    instead of a password: the server makes short-lived registry tokens from it."""

    kind: str = Field(max_length=8, description="aws (ECR), gcp (GCR) or azure (ACR).")
    access_key_id: str = Field("", max_length=128, description="aws: the access key id.")
    role_arn: str = Field("", max_length=2048, description="aws: a role to assume.")
    external_id: str = Field("", max_length=1224, description="aws: the role's external id.")
    auth: str = Field(
        "", max_length=16, description="azure: secret, certificate, workload or default."
    )
    tenant_id: str = Field("", max_length=253, description="azure: the tenant id or domain.")
    client_id: str = Field("", max_length=64, description="azure: the client (application) id.")
    secret: str = Field(
        "",
        max_length=65536,
        description="Write-only, never returned: aws the secret access key, gcp the "
        "service-account JSON key, azure the client secret or the certificate's PEM with its "
        "key. Empty: this server's own identity (the SDK's default chain, workload identity, "
        "the metadata server).",
    )

    def fields(self) -> dict[str, str]:
        """The identity's fields given (not its secret)."""
        return {
            k: v
            for k, v in self.model_dump(exclude={"kind", "secret"}, exclude_unset=True).items()
            if v
        }


class CredentialIn(_Body):
    name: str = Field(max_length=253)
    cluster: str = Field(max_length=63, description="Cluster name or id.")
    scope: str = Field(max_length=16, description="namespace, project or cluster.")
    project: str | None = Field(None, max_length=63)
    namespace: str | None = Field(None, max_length=63)
    provider: str = Field("custom", max_length=32)
    server: str | None = Field(None, max_length=512)
    username: str = Field("", max_length=512)
    password: str = Field(
        "", max_length=65536, description="Write-only; never returned. None with an identity."
    )
    identity: IdentityIn | None = Field(
        None, description="A cloud identity to make tokens from, instead of a password."
    )
    email: str = Field("", max_length=254)
    description: str = Field("", max_length=4096)
    active: bool = True
    adopt: bool = Field(
        False, description="Take over a same-named Secret pullkeeper did not create."
    )
    token_hosts: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Token servers on other hosts the login may be sent to (host[:port] or "
        "*.domain), beyond the registry's own host and the well-known ones.",
    )

    def spec(self, scope: Scope, cloud: CloudLogin | None = None) -> CredentialSpec:
        """The credential this body describes, in the scope its names resolve to
        (credentials.find_scope), with its identity exchanged once (cloud_exchange.login)."""
        return CredentialSpec(
            name=self.name,
            scope=scope,
            provider=self.provider,
            server=self.server,
            username=self.username,
            password=self.password,
            email=self.email,
            description=self.description,
            active=self.active,
            adopt=self.adopt,
            token_hosts=tuple(self.token_hosts),
            cloud=cloud,
        )


class CredentialPatch(_Body):
    name: str | None = Field(None, max_length=253)
    server: str | None = Field(None, max_length=512)
    username: str | None = Field(None, max_length=512)
    password: str | None = Field(None, max_length=65536)
    email: str | None = Field(None, max_length=254)
    description: str | None = Field(None, max_length=4096)
    adopt: bool | None = None
    token_hosts: list[str] | None = Field(None, max_length=20)
    identity: IdentityIn | None = Field(
        None, description="A new cloud identity, whole, its secret again (never shown)."
    )


class PolicyIn(_Body):
    default_registry: str | None = Field(None, max_length=512)
    allowlist: list[str] | None = Field(None, max_length=1000)
    always_pull: bool | None = None
    service_accounts: list[str] | None = Field(
        None,
        max_length=1000,
        description='ServiceAccounts that get the delivered Secrets: names, ["*"] for all, '
        "[] for none; null inherits.",
    )
    require_digest: bool | None = None
    forbid_latest: bool | None = Field(
        None, description="Refuse an explicit :latest and images with neither tag nor digest."
    )
    mode: str | None = Field(
        None, max_length=16, description="enforce (deny), warn, or audit (record only)."
    )


class CheckIn(_Body):
    image: str = Field(max_length=1024, description="The image, as a pod spec would name it.")
    cluster: str | None = Field(
        None, max_length=253, description="With namespace; not with config."
    )
    namespace: str | None = Field(None, max_length=63)
    config: str | None = Field(
        None,
        max_length=CHECK_CONFIG_LIMIT,
        description="A docker config.json, .dockercfg or Secret manifests (the file's text) "
        "whose entries are tried instead of a namespace's credentials; never stored.",
    )
    platform: str | None = Field(None, max_length=64, description="os/arch[/variant]")
    pull_policy: str | None = Field(None, max_length=16)
    all: bool = Field(
        False, description="Try every credential, not only up to the first that works."
    )
    on_node: bool = Field(
        False,
        description="The image is already on the node: with pull policy Never or IfNotPresent "
        "the kubelet runs that copy and the registry is not asked.",
    )
    node_labels: dict[str, str] = Field(
        default_factory=dict,
        max_length=32,
        description="The labels of the node the pod would run on: the cluster's node profile "
        "for them adds the node's own logins (after the pod's) and its mirrors. Default: the "
        "profile of a node no selector picks.",
    )


class ContainerIn(_Body):
    name: str | None = Field(None, max_length=63, description="Default: the workload's name.")
    image: str = Field(max_length=1024)
    port: int | None = Field(None, ge=1, le=65535, description="A containerPort (TCP).")


class WorkloadIn(_Body):
    name: str = Field(max_length=63, description="The Deployment's name; its pods get app=NAME.")
    image: str | None = Field(None, max_length=1024, description="One container's image.")
    port: int | None = Field(None, ge=1, le=65535, description="With image: its containerPort.")
    containers: list[ContainerIn] | None = Field(
        None, max_length=32, description="Several containers, instead of image."
    )
    replicas: int = Field(1, ge=0, le=workloads.MAX_REPLICAS)

    def to_containers(self) -> list[Container]:
        given = (
            None
            if self.containers is None
            else [Container(c.name or "", c.image, c.port) for c in self.containers]
        )
        return workloads.containers_of(self.name, self.image, self.port, given)


class KubeconfigIn(_Body):
    """A kubeconfig for the server to keep for a cluster (DATA/kubeconfigs/<id>.yaml)."""

    content: str = Field(max_length=256 * 1024, description="The kubeconfig file's text (YAML).")
    context: str = Field(
        "", max_length=253, description="One of its contexts; empty: its current-context."
    )
