"""`pullkeeper kubelet-credential-provider`: the kubelet's image credential provider.

The kubelet runs it (through a wrapper in its --image-credential-provider-bin-dir) for
every pull whose answer it has not cached, so it loads no more than its source needs: a
docker config file loads no httpx and nothing of the server; a cloud identity loads its
cloud's SDK, a pullkeeper server httpx, only when the image is theirs to answer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from pullkeeper.cli.common import CLIError
from pullkeeper.cloud.endpoints import Endpoints
from pullkeeper.core import credential_provider as protocol
from pullkeeper.core.cloud import GOOGLE_TOKEN_URI, ExchangeError, IdentityError
from pullkeeper.core.credential_provider import Auth, CacheKeyType
from pullkeeper.core.dockerconfig import AuthEntry
from pullkeeper.core.go import duration as goduration
from pullkeeper.core.keyring import Keyring
from pullkeeper.services import config_files

if TYPE_CHECKING:
    from pullkeeper.cli.remote import RemoteError

# Five minutes: a file's credentials do not expire, so the cache only spares starting this
# command again, and it bounds how long a password changed in the file (or on the server,
# or a revoked node token) goes unused. A cloud token's answer is cached for half the
# token's remaining life instead.
DEFAULT_CACHE_DURATION = "5m"
_DEFAULT_NS = goduration.parse(DEFAULT_CACHE_DURATION)
# Seconds to wait for a pullkeeper server: the kubelet waits for the provider meanwhile.
DEFAULT_TIMEOUT = 10.0
_IN_CONFIG = "in this provider's args in the kubelet's CredentialProviderConfig"


class ProviderError(CLIError):
    """The kubelet gets no answer: one line on stderr, nothing on stdout, exit status 1."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class Answer:
    """A source's auth entries, and how long it says the kubelet may reuse them (ns)."""

    auth: list[Auth]
    cache_duration: int = _DEFAULT_NS


# Where the credentials come from: given the repository name and what the answer will be
# cached for, the auth entries to answer: a docker config file, a cloud identity, or a
# pullkeeper server (with a node token).
Source = Callable[[str, CacheKeyType], Answer]


def config_file(path: str) -> Source:
    """The credentials of a docker config.json, .dockercfg or Secret manifest, as the
    kubelet's keyring matches them."""
    if path == "-":
        raise ProviderError(
            "--config -: standard input carries the kubelet's request; give the path of a file"
        )
    try:
        decoded = config_files.decode(path)
    except config_files.InputError as e:
        raise ProviderError(f"{e}; fix the file, or the --config {_IN_CONFIG}") from None
    keyring = Keyring()
    keyring.add(decoded.auths.items(), path)
    return lambda repository, key_type: Answer(protocol.auth_for(keyring, repository, key_type))


def cloud_identity(path: str, endpoints: Endpoints, acr_exchange_host: str = "") -> Source:
    """A registry token the identity in the file is exchanged for, for the images of its
    registry; nothing is exchanged for any other image."""
    from pullkeeper.services import provider_identity  # noqa: PLC0415

    try:
        identity = provider_identity.load(path)
    except OSError as e:
        raise ProviderError(
            f"{path}: cannot read: {e.strerror or e}; fix the --identity {_IN_CONFIG}"
        ) from None
    except IdentityError as e:
        raise ProviderError(
            f"{path}: {e.field}: {e.message}; fix the file, or the --identity {_IN_CONFIG}"
        ) from None
    keyring = Keyring()
    keyring.add([(identity.server, AuthEntry())], path)

    def answer(repository: str, key_type: CacheKeyType) -> Answer:
        auth = protocol.auth_for(keyring, repository, key_type)
        if not auth:
            return Answer([])
        try:
            token = provider_identity.exchange(identity, endpoints, acr_exchange_host)
        except ExchangeError as e:
            raise ProviderError(
                f"{path}: the {identity.provider} identity got no token for "
                f"{identity.server} ({e.cause}): {e.message}"
            ) from None
        tokens = [replace(a, username=token.username, password=token.password) for a in auth]
        return Answer(tokens, protocol.cache_duration(datetime.now(UTC), token.expires_at))

    return answer


def pullkeeper_server(
    url: str, token_file: str, cluster: str, ca_file: str | None, timeout: float
) -> Source:
    """The cluster's credentials that reach every namespace, from a pullkeeper server that
    a node token lets this node ask."""
    from pullkeeper.cli.remote import Remote, RemoteError, normalize_url  # noqa: PLC0415

    base_url = normalize_url(url)
    try:
        with open(token_file, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        raise ProviderError(
            f"{token_file}: cannot read: {e.strerror or e}; fix the --token-file {_IN_CONFIG}"
        ) from None
    if not token:
        raise ProviderError(
            f"{token_file} is empty: put the node token `pullkeeper cluster node-token create` "
            "printed in it"
        )

    def answer(repository: str, key_type: CacheKeyType) -> Answer:
        params = {"cluster": cluster, "image": repository, "cache_key_type": key_type.value}
        try:
            with Remote(base_url, token, ca_file=ca_file, timeout=timeout) as api:
                found = api.get("/node-credentials", params)
        except OSError as e:  # the CA file
            raise ProviderError(
                f"--ca-file {ca_file}: cannot read: {e.strerror or e}; fix it {_IN_CONFIG}"
            ) from None
        except RemoteError as e:
            raise ProviderError(_refused(e, base_url)) from None
        try:
            auth = [Auth(a["glob"], a["username"], a["password"]) for a in found["auth"]]
            expires = found.get("expires_at")
            until = datetime.fromisoformat(expires) if expires else None
        except (KeyError, TypeError, ValueError):
            raise ProviderError(
                f"the answer from {base_url} holds no node credentials: is it a pullkeeper "
                "server of this version or later?"
            ) from None
        if until is None:
            return Answer(auth)
        return Answer(auth, protocol.cache_duration(datetime.now(UTC), until, _DEFAULT_NS))

    return answer


def _refused(e: RemoteError, base_url: str) -> str:
    status, said = e.status, e.format_message()
    if status == 401:
        return (
            f"{base_url} refused the node token ({said}): issue a new one with `pullkeeper "
            "cluster node-token create` and put it in the --token-file"
        )
    if status is None:  # no answer
        return f"{said}; the kubelet asks again at the next pull"
    return f"{base_url} answered HTTP {status}: {said}"


# --------------------------------------------------------------------------- the command


def _nanoseconds(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        ns = goduration.parse(value)
    except goduration.InvalidDuration as e:
        raise click.BadParameter(f"{e}; give a Go duration such as 5m, 1h30m or 0") from None
    if ns < 0:
        raise click.BadParameter(f"{value} is negative; 0 tells the kubelet not to cache")
    return ns


@click.command("kubelet-credential-provider")
@click.option(
    "--config",
    "config",
    metavar="FILE",
    help="Answer from this docker config.json, .dockercfg or Secret manifest.",
)
@click.option(
    "--identity",
    metavar="FILE",
    help="Answer with registry tokens this cloud identity file (ECR, GCR, ACR) is exchanged for.",
)
@click.option(
    "--server",
    "server_url",
    metavar="URL",
    help="Answer from this pullkeeper server: the cluster's credentials of cluster scope.",
)
@click.option(
    "--token-file",
    metavar="FILE",
    help="With --server: the file holding the cluster's node token.",
)
@click.option(
    "--cluster",
    metavar="NAME",
    help="With --server: the cluster (name or id) this node is in, the node token's.",
)
@click.option(
    "--ca-file",
    metavar="FILE",
    envvar="PULLKEEPER_CA_FILE",
    help="The CA bundle trusted instead of the system's: the server's, or the clouds' "
    "endpoints'. [env: PULLKEEPER_CA_FILE]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    envvar="PULLKEEPER_TIMEOUT",
    metavar="SECONDS",
    help="With --server: how long to wait for it. [env: PULLKEEPER_TIMEOUT]",
)
@click.option(
    "--cloud-aws-endpoint",
    "aws_endpoint_url",
    metavar="URL",
    envvar="PULLKEEPER_CLOUD_AWS_ENDPOINT",
    help="With --identity: ECR's and STS's endpoint (a VPC endpoint); default AWS's "
    "regional ones. [env: PULLKEEPER_CLOUD_AWS_ENDPOINT]",
)
@click.option(
    "--cloud-google-token-uri",
    "google_token_uris",
    multiple=True,
    metavar="URL",
    envvar="PULLKEEPER_CLOUD_GOOGLE_TOKEN_URIS",
    help=f"With --identity: a token endpoint a service-account key may name (repeatable); "
    f"default {GOOGLE_TOKEN_URI}. [env: PULLKEEPER_CLOUD_GOOGLE_TOKEN_URIS, space-separated]",
)
@click.option(
    "--cloud-azure-authority",
    "azure_authority",
    metavar="URL",
    envvar="PULLKEEPER_CLOUD_AZURE_AUTHORITY",
    help="With --identity: the Microsoft Entra authority; default login.microsoftonline.com. "
    "[env: PULLKEEPER_CLOUD_AZURE_AUTHORITY]",
)
@click.option(
    "--acr-exchange-host",
    metavar="HOST[:PORT]",
    envvar="PULLKEEPER_ACR_EXCHANGE_HOST",
    help="With --identity: the registry an ACR login's token exchange is made with, instead "
    "of the identity's server (a stand-in, a proxy). [env: PULLKEEPER_ACR_EXCHANGE_HOST]",
)
@click.option(
    "--cache-key-type",
    type=click.Choice([t.value for t in CacheKeyType]),
    default=CacheKeyType.REGISTRY.value,
    show_default=True,
    help="What the kubelet reuses an answer for: the image, every image of its registry, "
    "or every image it runs this provider for.",
)
@click.option(
    "--cache-duration",
    metavar="DURATION",
    callback=_nanoseconds,
    help=f"How long the kubelet reuses an answer: a Go duration (90s, 1h30m); 0 not at all. "
    f"Default: {DEFAULT_CACHE_DURATION}, and for a cloud token half its remaining life "
    f"(from a server: that, at most {DEFAULT_CACHE_DURATION}).",
)
def kubelet_credential_provider(
    config: str | None,
    identity: str | None,
    server_url: str | None,
    token_file: str | None,
    cluster: str | None,
    ca_file: str | None,
    timeout: float,
    aws_endpoint_url: str | None,
    google_token_uris: tuple[str, ...],
    azure_authority: str | None,
    acr_exchange_host: str | None,
    cache_key_type: str,
    cache_duration: int | None,
) -> None:
    """Answer the kubelet's CredentialProviderRequest on standard input from one source.

    The source is a docker config file (--config), a cloud identity exchanged for registry
    tokens (--identity), or a pullkeeper server (--server with --token-file and --cluster).
    The answer holds the credentials the kubelet's keyring would use from it for the image,
    or, as --cache-key-type says, for every image the kubelet will reuse the answer for:
    each under its registry key, the key's first credential. An image nothing matches gets
    an empty answer, so the kubelet pulls it with its other credentials or anonymously. A
    request, file, identity or server that fails is exit status 1, with one line on stderr
    and nothing on stdout.
    """
    sources = {"--config": config, "--identity": identity, "--server": server_url}
    if sum(v is not None for v in sources.values()) != 1:
        raise click.UsageError(f"give one of {', '.join(sources)}: where the answers come from")
    server_only = {"--token-file": token_file, "--cluster": cluster}
    if server_url is None:
        extra = [name for name, v in server_only.items() if v is not None]
        if extra:
            raise click.UsageError(f"{extra[0]} goes with --server")
    elif not (token_file and cluster):
        absent = [name for name, v in server_only.items() if not v]
        raise click.UsageError(f"--server needs {' and '.join(absent)}")
    try:
        request = protocol.parse_request(sys.stdin.buffer.read())
    except protocol.RequestError as e:
        raise ProviderError(str(e)) from None
    source: Source
    if config is not None:
        source = config_file(config)
    elif identity is not None:
        endpoints = Endpoints(
            aws=aws_endpoint_url,
            google_token_uris=google_token_uris or (GOOGLE_TOKEN_URI,),
            azure_authority=azure_authority,
            ca_file=ca_file,
        )
        source = cloud_identity(identity, endpoints, acr_exchange_host or "")
    elif server_url and token_file and cluster:
        source = pullkeeper_server(server_url, token_file, cluster, ca_file, timeout)
    key_type = CacheKeyType(cache_key_type)
    answer = source(request.repository, key_type)
    duration = answer.cache_duration if cache_duration is None else cache_duration
    click.echo(protocol.response(answer.auth, key_type, duration))
