"""A TCP listener that records who connected and what they sent: the target of a forgery.

Tests point the server at it and then look whether anything arrived. It answers each
connection with a fixed reply (an HTTP answer that is no registry's, by default) and
stops by itself when the test ends.
"""

from __future__ import annotations

import socket
import ssl
import threading
from types import TracebackType

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
