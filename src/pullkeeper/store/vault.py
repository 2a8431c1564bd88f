"""Encryption of secret material at rest: AES-256-GCM, one key id per record.

The key material comes from a key source: a directory of `*.key` files (32
bytes, or their base64), by default DATA/keys, or the `keys` setting
(PULLKEEPER_KEYS). Every server on one store reads the same source. A key is
known by its fingerprint; the store (table encryption_keys) records the key
id and fingerprint of every key its secrets were written with, and which one
is current. So a missing or swapped key is found at start, and a rotation
reaches every process through the store: each encryption asks the store, in
its own transaction, which key is current.

Key ids are fingerprints, but for keys made before that: those keep their
file name as id, and the store maps it to their fingerprint (an alias).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from pullkeeper.files import write_atomic
from pullkeeper.store.models import EncryptionKey

__all__ = [
    "InlineKeys",
    "KeyDirectory",
    "KeySource",
    "KeyUnavailable",
    "Vault",
    "VaultError",
    "current_key_id",
    "fingerprint",
]

_NONCE = 12
_KEY_BYTES = 32
_FINGERPRINT_LABEL = b"pullkeeper encryption key fingerprint"
# Every server on one store needs the same keys: what to tell whoever runs one without them.
_SHARE_KEYS = (
    "every server on one store needs the same keys: give each the same keys_dir "
    "(e.g. one mounted Secret) or the same PULLKEEPER_KEYS"
)


class VaultError(Exception):
    """A key that is missing or a record that does not decrypt."""


class KeyUnavailable(VaultError):
    """A key this process needs is not in its key source, or is not the key the store knows."""


def fingerprint(key: bytes) -> str:
    """32 hex digits naming a key: a keyed hash of a fixed label, which tells nothing of the key."""
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:32]


def _parse_key(data: bytes) -> bytes:
    """A key from its 32 bytes or their base64 (as `openssl rand -base64 32` prints it)."""
    if len(data) == _KEY_BYTES:
        return data
    try:
        key = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a key") from None
    if len(key) != _KEY_BYTES:
        raise ValueError("not a key")
    return key


class KeySource(ABC):
    """Where the keys come from: a directory (KeyDirectory) or a setting (InlineKeys)."""

    @abstractmethod
    def read(self) -> tuple[dict[str, bytes], dict[str, str]]:
        """Fingerprint -> key, and file name -> the fingerprint of what that file holds (to
        tell a swapped file from a missing one)."""

    @abstractmethod
    def add(self, key: bytes) -> None:
        """Keep a new key in the source, or raise KeyUnavailable saying why it cannot."""

    def legacy(self, name: str) -> bytes | None:
        """A file the data directory held before keys lived in the store's care, if any."""
        return None

    def place(self, name: str) -> str:
        """Where a key file of this name would be, for messages."""
        return str(self)


class KeyDirectory(KeySource):
    """`*.key` files in a directory; pullkeeper writes new ones as `<fingerprint>.key`, 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return f"the key directory {self.path}"

    def read(self) -> tuple[dict[str, bytes], dict[str, str]]:
        keys: dict[str, bytes] = {}
        names: dict[str, str] = {}
        if not self.path.is_dir():
            return keys, names
        try:
            files = sorted(self.path.glob("*.key"))
            for path in files:
                try:
                    key = _parse_key(path.read_bytes())
                except ValueError:
                    raise VaultError(
                        f"{path} is not an encryption key: a key file holds 32 random bytes "
                        "or their base64 (openssl rand -base64 32); remove or fix it"
                    ) from None
                keys[fingerprint(key)] = key
                names[path.stem] = fingerprint(key)
        except OSError as e:
            raise VaultError(f"cannot read {self}: {e.strerror or e}") from None
        return keys, names

    def add(self, key: bytes) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.path / f"{fingerprint(key)}.key", key)
        except OSError as e:
            raise KeyUnavailable(
                f"cannot write a new key into {self} ({e.strerror or e}): put one there "
                "yourself (openssl rand -base64 32), the same for every server, and try again"
            ) from None

    def legacy(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except OSError:
            return None

    def place(self, name: str) -> str:
        return str(self.path / f"{name}.key")


class InlineKeys(KeySource):
    """Keys given in a setting: base64 keys separated by commas or white space."""

    def __init__(self, text: str) -> None:
        self._keys: dict[str, bytes] = {}
        for n, entry in enumerate(re.split(r"[\s,]+", text.strip()), start=1):
            try:
                key = _parse_key(entry.encode())
            except ValueError:
                raise VaultError(
                    f"entry {n} of PULLKEEPER_KEYS (the keys setting) is not a key: each is the "
                    "base64 of 32 random bytes (openssl rand -base64 32), separated by commas"
                ) from None
            self._keys[fingerprint(key)] = key

    def __str__(self) -> str:
        return "PULLKEEPER_KEYS (the keys setting)"

    def read(self) -> tuple[dict[str, bytes], dict[str, str]]:
        return dict(self._keys), {}

    def add(self, key: bytes) -> None:
        raise KeyUnavailable(
            f"no new key to rotate to: {self} cannot be changed by pullkeeper; add a new key "
            "(openssl rand -base64 32) to it on every server, restart them, then rotate"
        )


def current_key_id(session: Session) -> str:
    """The store's current key, share-locked (PostgreSQL) so a rotation waits for this write.

    A rotation that commits while this waits leaves the old row not current, and the new one
    visible to the next statement only: hence the second look.
    """
    for _ in range(3):
        key_id = session.scalar(
            select(EncryptionKey.id)
            .where(EncryptionKey.current.is_(True))
            .with_for_update(read=True)
        )
        if key_id is not None:
            return key_id
    raise KeyUnavailable(
        "the store records no current encryption key: start the server once "
        "(pullkeeper serve) to create or adopt one"
    )


class Vault:
    """Encrypts and decrypts secret strings bound to the record they belong to."""

    def __init__(self, source: KeySource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._names: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        """Read the source again (a key added since, by a rotation or by hand)."""
        keys, names = self.source.read()
        with self._lock:
            self._keys, self._names = keys, names

    def fingerprints(self) -> set[str]:
        return set(self._keys)

    def file_names(self) -> dict[str, str]:
        return dict(self._names)

    def alias(self, key_id: str, fp: str) -> None:
        """Key id `key_id` (an old-style id the store recorded) names the key `fp`."""
        with self._lock:
            self._aliases[key_id] = fp

    def find(self, key_id: str) -> bytes | None:
        """The key of an id, reading the source again when it is not known yet."""
        fp = self._aliases.get(key_id, key_id)
        key = self._keys.get(fp)
        if key is None:
            self.reload()
            key = self._keys.get(fp)
        return key

    def problem(self, key_id: str) -> str:
        """Why key_id is not at hand (a file named after it holds another key, or none is
        there), and what to do."""
        fp = self._aliases.get(key_id, key_id)
        held = self._names.get(key_id)
        if held is not None and held != fp:
            return (
                f"is not what {self.source.place(key_id)} holds (that is key {held}): "
                "put the original key file back"
            )
        return f"is missing from {self.source}: put it there; {_SHARE_KEYS}"

    def key(self, key_id: str) -> bytes:
        key = self.find(key_id)
        if key is None:
            raise KeyUnavailable(f"encryption key {key_id} {self.problem(key_id)}")
        return key

    def generate(self) -> str:
        """A new random key, kept in the source; returns its id (its fingerprint)."""
        key = AESGCM.generate_key(bit_length=256)
        self.source.add(key)
        self.reload()
        return fingerprint(key)

    def encrypt(self, session: Session, plaintext: str, bound_to: str) -> tuple[str, bytes]:
        """Encrypt under the store's current key; returns (key id, nonce + ciphertext)."""
        key_id = current_key_id(session)
        nonce = secrets.token_bytes(_NONCE)
        blob = AESGCM(self.key(key_id)).encrypt(nonce, plaintext.encode(), bound_to.encode())
        return key_id, nonce + blob

    def decrypt(self, key_id: str, blob: bytes, bound_to: str) -> str:
        try:
            plain = AESGCM(self.key(key_id)).decrypt(
                blob[:_NONCE], blob[_NONCE:], bound_to.encode()
            )
        except InvalidTag:
            raise VaultError("a secret did not decrypt: wrong key or altered record") from None
        return plain.decode()
