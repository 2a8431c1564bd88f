"""Encryption of secret material at rest: AES-256-GCM, one key id per record.

Keys live as files in `<data>/keys/` (mode 0600) with `current` naming the
one new writes use. Rotation adds a key and re-encrypts; readers reload the
directory when they meet a key id they do not know, so a rotation done by
another process needs no restart.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


class VaultError(Exception):
    """A key that is missing or a record that does not decrypt."""


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Vault:
    """Encrypts and decrypts secret strings bound to the record they belong to."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._current = ""
        self._load()

    @classmethod
    def open(cls, directory: Path) -> Vault:
        """The vault in directory, creating its first key if there is none."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not (directory / "current").exists():
            cls._add_key(directory)
        return cls(directory)

    @staticmethod
    def _add_key(directory: Path) -> str:
        key_id = secrets.token_hex(8)
        _write_private(directory / f"{key_id}.key", AESGCM.generate_key(bit_length=256))
        _write_private(directory / "current", key_id.encode())
        return key_id

    def _load(self) -> None:
        try:
            current = (self._dir / "current").read_text().strip()
            keys = {p.stem: p.read_bytes() for p in self._dir.glob("*.key")}
        except OSError as e:
            raise VaultError(f"cannot read the encryption keys in {self._dir}: {e}") from None
        if current not in keys:
            raise VaultError(f"the current encryption key {current!r} is missing from {self._dir}")
        with self._lock:
            self._keys, self._current = keys, current

    @property
    def current_key_id(self) -> str:
        return self._current

    def rotate(self) -> str:
        """Make a new key current; returns its id. Old keys stay to read old records."""
        key_id = self._add_key(self._dir)
        self._load()
        return key_id

    def _key(self, key_id: str) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            self._load()
            key = self._keys.get(key_id)
        if key is None:
            raise VaultError(f"encryption key {key_id!r} is missing from {self._dir}")
        return key

    def refresh(self) -> None:
        """Pick up a rotation made by another process."""
        current = (self._dir / "current").read_text().strip()
        if current != self._current:
            self._load()

    def hash_key(self) -> bytes:
        """The key of content hashes (delivered Secrets' annotations), created on first use.

        Separate from the encryption keys: a rotation must not make every delivered
        Secret look changed.
        """
        path = self._dir / "content-hash.secret"
        with self._lock:
            if not path.exists():
                # Linked into place: of two processes starting at once, one key wins for both.
                tmp = path.with_name(f".{secrets.token_hex(4)}.tmp")
                _write_private(tmp, secrets.token_bytes(32))
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
                finally:
                    tmp.unlink()
            return path.read_bytes()

    def encrypt(self, plaintext: str, bound_to: str) -> tuple[str, bytes]:
        key_id = self._current
        nonce = secrets.token_bytes(_NONCE)
        blob = AESGCM(self._key(key_id)).encrypt(nonce, plaintext.encode(), bound_to.encode())
        return key_id, nonce + blob

    def decrypt(self, key_id: str, blob: bytes, bound_to: str) -> str:
        try:
            plain = AESGCM(self._key(key_id)).decrypt(
                blob[:_NONCE], blob[_NONCE:], bound_to.encode()
            )
        except InvalidTag:
            raise VaultError("a secret did not decrypt: wrong key or altered record") from None
        return plain.decode()
