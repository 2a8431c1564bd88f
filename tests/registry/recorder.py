"""The targets of a forgery: a TCP listener that records who connected and what they sent,
and a registry whose 401 names whatever token realm a test sets.

Tests point the server (or the CLI) at them and then look whether anything arrived. The
recorder answers each connection with a fixed reply (an HTTP answer that is no registry's,
by default); both stop by themselves when the test ends.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

from tests.registry import pki
from tests.registry.httpd import LocalHTTPServer, QuietHandler

_SAID = b'{"message": "internal admin console: db password is hunter2-internal"}'
NOT_A_REGISTRY = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_SAID), _SAID)
)
LEAKED_TEXT = "hunter2-internal"


class Recorder:
    def __init__(
        self,
        host: str = "127.0.0.1",
        reply: bytes = NOT_A_REGISTRY,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.host, self.port = host, self._sock.getsockname()[1]
        self._reply, self._tls = reply, tls
        self._lock = threading.Lock()
        self._received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f"recorder:{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """host:port as a registry address names it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def received(self) -> list[bytes]:
        """What each connection sent, in order (b"" for one that sent nothing)."""
        with self._lock:
            return list(self._received)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                data = self._exchange(conn)
            with self._lock:
                self._received.append(data)

    def _exchange(self, conn: socket.socket) -> bytes:
        conn.settimeout(2.0)
        data = b""
        try:
            stream = self._tls.wrap_socket(conn, server_side=True) if self._tls else conn
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = stream.recv(4096)
                if not chunk:
                    break
                data += chunk
            stream.sendall(self._reply)
        except (OSError, ssl.SSLError):
            pass
        return data

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Challenging(QuietHandler):
    realm = ""

    def do_GET(self) -> None:
        self.send_bytes(
            401,
            b'{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}',
            [
                ("WWW-Authenticate", f'Bearer realm="{self.realm}",service="registry"'),
                ("Docker-Distribution-API-Version", "registry/2.0"),
            ],
        )


class ChallengingRegistry:
    """An https registry on 127.0.0.1 (its certificate in ca_file) whose every answer is a
    401 naming `realm` as its token server."""

    def __init__(self, base: Path, realm: str = "") -> None:
        issued = pki.self_signed_server(base / "challenging-registry")
        self.ca_file = issued.cert_file
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(issued.cert_file, issued.key_file)
        self._handler = type("Handler", (_Challenging,), {"realm": realm})
        self._httpd = LocalHTTPServer(self._handler, tls)
        self.host = self._httpd.host
        self._httpd.start()

    @property
    def realm(self) -> str:
        return self._handler.realm

    @realm.setter
    def realm(self, value: str) -> None:
        self._handler.realm = value

    def close(self) -> None:
        self._httpd.stop()

    def __enter__(self) -> ChallengingRegistry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
