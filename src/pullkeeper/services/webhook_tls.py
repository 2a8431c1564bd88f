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
    """Renews a generated certificate before it expires and loads it into the live context:
    new connections get the new certificate, with no restart."""

    def __init__(self, settings: Any, context: ssl.SSLContext) -> None:
        self.settings, self.context = settings, context
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-tls", daemon=True)

    def start(self) -> None:
        if not self.settings.webhook_cert_file:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        found, renewed = certs.ensure(
            self.settings.data / "webhook", list(self.settings.webhook_hosts)
        )
        if renewed:
            self.context.load_cert_chain(str(found.cert), str(found.key))
            _log.info("webhook: renewed the serving certificate")
        return renewed

    def _run(self) -> None:
        while not self._stop.wait(_CHECK_SECONDS):
            try:
                self.check()
            except Exception:  # keep serving the current certificate; try again later
                _log.exception("webhook: cannot renew the serving certificate")
