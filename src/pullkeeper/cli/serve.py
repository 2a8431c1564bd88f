"""`pullkeeper serve`, `pullkeeper db upgrade`, `pullkeeper keys rotate`: the server side."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from pullkeeper.cli.common import CLIError, warn
from pullkeeper.services.errors import ServiceError

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

    from pullkeeper.services.auth import FirstStart
    from pullkeeper.services.server import Server
    from pullkeeper.settings import Settings

_server_options = [
    click.option("--data", type=click.Path(path_type=Path), help="Data directory [./.pullkeeper]."),
    click.option("--database-url", help="postgresql://... instead of the embedded SQLite."),
    click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        help="A TOML file of settings (flags and PULLKEEPER_* win).",
    ),
]


def _with_server_options(f: Any) -> Any:
    for option in reversed(_server_options):
        f = option(f)
    return f


def _settings(config_file: Path | None, **given: Any) -> Settings:
    # Not at the top: pydantic loads when a command runs, not for its --help.
    from pydantic import ValidationError  # noqa: PLC0415

    from pullkeeper.settings import Settings  # noqa: PLC0415

    try:
        return Settings.load(config_file, **given)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CLIError(f"setting {where}: {first['msg']}") from None
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot read the settings: {e}") from None


def _server(settings: Settings, *, check_keys: bool = True) -> Server:
    # Not at the top: the store (~1 s to load) stays closed for `webhook manifests`.
    from pullkeeper.services.server import Server, StoreUnavailable  # noqa: PLC0415

    try:
        return Server.open(settings, check_keys=check_keys)
    except StoreUnavailable as e:
        raise CLIError(e.message) from None


@click.command()
@_with_server_options
@click.option("--host", help="Address to listen on [127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [8080].")
@click.option(
    "--webhook-port",
    type=int,
    help="Serve the admission webhook over TLS on this port, and only there [off].",
)
@click.option(
    "--webhook-client-ca",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Answer only webhook clients with a certificate this CA signed (the API server's).",
)
def serve(
    data: Path | None,
    database_url: str | None,
    config_file: Path | None,
    host: str | None,
    port: int | None,
    webhook_port: int | None,
    webhook_client_ca: Path | None,
) -> None:
    """Run the management server: REST API, admission webhook, health and metrics.

    On first start it creates the encryption key and an admin user, and writes
    the admin's password (and API token, unless PULLKEEPER_ADMIN_TOKEN chose it)
    to files in the data directory that only this user can read.
    """
    # Not at the top: the API and web pages load for serve, not for db, keys or webhook.
    from pullkeeper.app import AnsweredOnce, create_app  # noqa: PLC0415

    settings = _settings(
        config_file,
        data=data,
        database_url=database_url,
        host=host,
        port=port,
        webhook_port=webhook_port,
        webhook_client_ca=webhook_client_ca,
    )
    server = _server(settings)
    try:
        # Before the first start: a webhook listener that cannot start creates nothing.
        webhook = _webhook_listener(server, settings) if settings.webhook_port else None
        try:
            first = server.first_start()
        except OSError as e:
            raise CLIError(
                f"cannot write the first admin's login into the data directory {settings.data}: "
                f"{e.strerror or e}; make it writable by this user and start again"
            ) from None
        if first is not None:
            click.echo(_first_start_message(first, settings), err=True)
        # uvicorn re-raises SIGTERM once it has drained; exiting 0 then lets `finally` run.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        _run(_api_listener(AnsweredOnce(create_app(server)), settings), webhook, settings)
    finally:
        server.close()


def _first_start_message(first: FirstStart, settings: Settings) -> str:
    """Where the admin's login is: the log stream gets file names, never the secrets."""
    files = "both files" if first.token_file else "the file"
    token = (
        f"in {first.token_file} (readable by this user only)"
        if first.token_file
        else "the one the admin_token setting (PULLKEEPER_ADMIN_TOKEN) gives"
    )
    return (
        "pullkeeper: first start; an admin user was created.\n"
        "  user:      admin\n"
        f"  password:  in {first.password_file} (readable by this user only)\n"
        f"  API token: {token}\n"
        f"  log in:    pullkeeper login http://{settings.host}:{settings.port} --username admin "
        f"--password-stdin < {shlex.quote(str(first.password_file))}\n"
        f"Change the password once logged in, then delete {files}."
    )


def _common(settings: Settings) -> dict[str, Any]:
    return {"log_level": settings.log_level, "server_header": False}


def _api_listener(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    # Not at the top: only serve runs a listener, not db, keys or webhook manifests.
    import uvicorn  # noqa: PLC0415

    # uvicorn believes X-Forwarded-* from 127.0.0.1 by default: any local process could
    # then choose its address (the login throttle's key, the audit's source) and scheme.
    proxies = list(settings.trusted_proxies)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=30,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        **_common(settings),
    )


def _webhook_listener(server: Server, settings: Settings) -> uvicorn.Config:
    """The webhook's TLS listener: an application of its own, its TLS context loaded (so a
    bad certificate or client CA file stops serve here, in one line)."""
    # Not at the top: only serve runs a listener, not db, keys or webhook manifests.
    import uvicorn  # noqa: PLC0415

    from pullkeeper.api.webhook import create_webhook_app  # noqa: PLC0415
    from pullkeeper.services import webhook_tls  # noqa: PLC0415

    try:
        found = webhook_tls.files(settings)
    except (OSError, ValueError) as e:
        raise CLIError(f"cannot prepare the webhook's TLS certificate: {e}") from None
    callers: dict[str, Any] = {}
    if settings.webhook_client_ca:
        # The TLS handshake itself refuses a client without a certificate this CA signed.
        callers = {
            "ssl_ca_certs": str(settings.webhook_client_ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    else:
        warn(
            f"the webhook on port {settings.webhook_port} answers any client that reaches it; "
            "set webhook_client_ca (--webhook-client-ca) to require the API server's "
            "client certificate"
        )
    config = uvicorn.Config(
        create_webhook_app(server),
        host=settings.host,
        port=settings.webhook_port,
        ssl_certfile=str(found.cert),
        ssl_keyfile=str(found.key),
        timeout_graceful_shutdown=10,
        proxy_headers=False,  # the API server connects itself
        **callers,
        **_common(settings),
    )
    try:
        config.load()
    except OSError as e:  # ssl.SSLError included: a file that holds no certificate or key
        raise CLIError(f"cannot load the webhook's TLS files: {e}") from None
    if config.ssl is None:
        raise CLIError("the webhook's TLS context could not be made")
    return config


def _run(api: uvicorn.Config, webhook: uvicorn.Config | None, settings: Settings) -> None:
    """The API's listener, and the webhook's when there is one, until SIGTERM or Ctrl-C."""
    # Not at the top: only serve runs a listener, not db, keys or webhook manifests.
    import uvicorn  # noqa: PLC0415

    from pullkeeper.services import webhook_tls  # noqa: PLC0415

    main = uvicorn.Server(api)
    if webhook is None:
        with contextlib.suppress(KeyboardInterrupt):
            main.run()
        _started(main)
        return
    hook = uvicorn.Server(webhook)
    # Only the API listener handles signals; the webhook stops when it has.
    hook.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    # _webhook_listener loaded the listener's TLS context.
    renewer = webhook_tls.Renewer(settings, cast(ssl.SSLContext, webhook.ssl))
    renewer.start()

    async def both() -> None:
        listening = asyncio.create_task(hook.serve())
        try:
            await main.serve()
        finally:
            hook.should_exit = True
            await listening

    try:
        asyncio.run(both())
    except KeyboardInterrupt:
        pass
    finally:
        renewer.stop()
    _started(main)
    _started(hook)


def _started(listener: uvicorn.Server) -> None:
    # As uvicorn.run does: a listener that never started (say, its port is taken) is exit 3.
    if not listener.started:
        sys.exit(3)


@click.group()
def db() -> None:
    """The server's store."""


@db.command("upgrade")
@_with_server_options
def db_upgrade(data: Path | None, database_url: str | None, config_file: Path | None) -> None:
    """Apply every pending schema migration."""
    # The schema only: a migration job need not hold the encryption keys.
    _server(_settings(config_file, data=data, database_url=database_url), check_keys=False).close()
    click.echo("the schema is up to date")


@click.group()
def keys() -> None:
    """The encryption keys of secret material."""


@keys.command("rotate")
@_with_server_options
def keys_rotate(data: Path | None, database_url: str | None, config_file: Path | None) -> None:
    """Make a new key current and re-encrypt every secret with it, while servers keep running.

    Running servers on the same store encrypt with the new key from their next write. The
    new key is written into the key directory, or, when the keys come from a source
    pullkeeper cannot write, is the one key there the store does not know yet.
    """
    # Not at the top: key rotation loads the store, which `webhook manifests` never opens.
    from pullkeeper.services import keys as keys_service  # noqa: PLC0415

    server = _server(_settings(config_file, data=data, database_url=database_url))
    try:
        key_id, count = keys_service.rotate(server)
    except ServiceError as e:
        raise CLIError(e.message) from None
    except Exception as e:  # an unreadable key, a record that does not decrypt, the store
        raise CLIError(f"cannot rotate the keys: {_one_line(e)}") from None
    finally:
        server.close()
    click.echo(f"key {key_id} is current; {count} secrets re-encrypted")


def _one_line(e: Exception) -> str:
    # A store error's own text holds the SQL statement; the database's message does not.
    cause = getattr(e, "orig", None) or e
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__
