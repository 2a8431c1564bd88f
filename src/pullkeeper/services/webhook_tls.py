"""The webhook listener's certificate: from files, or generated and renewed by pullkeeper."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

from pullkeeper.kube import certs

__all__ = ["Renewer", "files"]

_log = logging.getLogger("pullkeeper.webhook")
_CHECK_SECONDS = 12 * 3600
# Configured files are read this often: a renewed Secret reaches the pod's volume within
# about a minute too.
_FILES_CHECK_SECONDS = 60.0


def files(settings: Any) -> certs.Files:
    """The certificate to serve: the configured files, else the generated ones (issued or
    renewed now when needed)."""
    if settings.webhook_cert_file:
        key = settings.webhook_key_file or settings.webhook_cert_file
        ca = settings.webhook_cert_file
        return certs.Files(ca, settings.webhook_cert_file, key)
    found, _ = certs.ensure(settings.data / "webhook", list(settings.webhook_hosts))
    return found


class Renewer:
    """Keeps the live context's certificate current, with no restart: a generated one is
    renewed before it expires; configured files are loaded again when they change (a
    mounted Secret that cert-manager renews). New connections get the new certificate."""

    def __init__(self, settings: Any, context: ssl.SSLContext) -> None:
        self.settings, self.context = settings, context
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-tls", daemon=True)
        self._loaded = self._read_files() if settings.webhook_cert_file else b""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Renew or reload now if due; whether the context got a new certificate."""
        if self.settings.webhook_cert_file:
            return self._reload_files()
        found, renewed = certs.ensure(
            self.settings.data / "webhook", list(self.settings.webhook_hosts)
        )
        if renewed:
            self.context.load_cert_chain(str(found.cert), str(found.key))
            _log.info("webhook: renewed the serving certificate")
        return renewed

    def _read_files(self) -> bytes:
        found = files(self.settings)
        return found.cert.read_bytes() + b"\0" + found.key.read_bytes()

    def _reload_files(self) -> bool:
        seen = self._read_files()
        if seen == self._loaded:
            return False
        found = files(self.settings)
        # A pair caught mid-change (certificate new, key old) fails to load into a scratch
        # context first (a failed load would leave the live one half-changed): the current
        # certificate is kept and the next check tries again.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(found.cert), str(found.key))
        self.context.load_cert_chain(str(found.cert), str(found.key))
        self._loaded = seen
        _log.info("webhook: loaded the changed certificate from %s", found.cert)
        return True

    def _run(self) -> None:
        every = _FILES_CHECK_SECONDS if self.settings.webhook_cert_file else _CHECK_SECONDS
        while not self._stop.wait(every):
            try:
                self.check()
            except Exception:  # keep serving the current certificate; try again later
                _log.exception("webhook: cannot renew or reload the serving certificate")
