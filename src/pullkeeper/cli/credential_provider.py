"""`pullkeeper kubelet-credential-provider`: the kubelet's image credential provider.

The kubelet runs it (through a wrapper in its --image-credential-provider-bin-dir) for
every pull whose answer it has not cached, so it loads no more than it needs: no httpx,
nothing of the server.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from pullkeeper.cli.common import CLIError
from pullkeeper.core import credential_provider as protocol
from pullkeeper.core.credential_provider import Auth, CacheKeyType
from pullkeeper.core.go import duration as goduration
from pullkeeper.core.keyring import Keyring
from pullkeeper.services import config_files

# Five minutes: a file's credentials do not expire, so the cache only spares starting this
# command again, and it bounds how long a password changed in the file goes unused. The
# tokens of the sources to come live for hours; their answers will say so themselves.
DEFAULT_CACHE_DURATION = "5m"


class ProviderError(CLIError):
    """The kubelet gets no answer: one line on stderr, nothing on stdout, exit status 1."""

    exit_code = 1


# Where the credentials come from: given the repository name and what the answer will be
# cached for, the auth entries to answer. A docker config file for now; a pullkeeper server
# (with a node token) and a cloud identity are to come as other sources of this shape.
Source = Callable[[str, CacheKeyType], list[Auth]]


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
        raise ProviderError(
            f"{e}; fix the file, or the --config in this provider's args in the kubelet's "
            "CredentialProviderConfig"
        ) from None
    keyring = Keyring()
    keyring.add(decoded.auths.items(), path)
    return lambda repository, cache_key_type: protocol.auth_for(keyring, repository, cache_key_type)


def _nanoseconds(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
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
    required=True,
    metavar="FILE",
    help="The docker config.json, .dockercfg or Secret manifest to answer from.",
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
    default=DEFAULT_CACHE_DURATION,
    show_default=True,
    metavar="DURATION",
    callback=_nanoseconds,
    help="How long the kubelet reuses an answer: a Go duration (90s, 1h30m); 0 not at all.",
)
def kubelet_credential_provider(config: str, cache_key_type: str, cache_duration: int) -> None:
    """Answer the kubelet's CredentialProviderRequest on standard input from a docker config file.

    The answer holds the credentials the kubelet's keyring would use from the file for the
    image, or, as --cache-key-type says, for every image the kubelet will reuse the answer
    for: each under its registry key, the key's first credential. An image nothing matches
    gets an empty answer, so the kubelet pulls it with its other credentials or anonymously.
    A request or file that is wrong is exit status 1, with one line on stderr and nothing on
    stdout.
    """
    try:
        request = protocol.parse_request(sys.stdin.buffer.read())
    except protocol.RequestError as e:
        raise ProviderError(str(e)) from None
    source = config_file(config)
    key_type = CacheKeyType(cache_key_type)
    click.echo(protocol.response(source(request.repository, key_type), key_type, cache_duration))
