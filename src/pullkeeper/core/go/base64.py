"""encoding/base64 StdEncoding and RawStdEncoding decoding, errors included.

Go skips CR and LF anywhere, accepts non-zero trailing bits, wants padding
exactly when the encoding has it, and reports the offset of the first bad byte.
"""

from __future__ import annotations

import base64 as _b64

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_NEWLINES = (0x0A, 0x0D)
_PAD = 0x3D


class CorruptInput(ValueError):
    """base64.CorruptInputError."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def _decode_quantum(src: bytes, si: int, padded: bool, out: bytearray) -> tuple[int, bool]:
    """Decode one 4-character quantum; returns (next index, whether input ended)."""
    dbuf = [0, 0, 0, 0]
    dlen = 4
    j = 0
    end = False
    while j < 4:
        if si == len(src):
            if j == 0:
                return si, True
            if j == 1 or padded:
                raise CorruptInput(si - j)
            dlen = j
            end = True
            break
        c = src[si]
        si += 1
        v = _DECODE.get(c)
        if v is not None:
            dbuf[j] = v
            j += 1
            continue
        if c in _NEWLINES:
            continue
        if not padded or c != _PAD:
            raise CorruptInput(si - 1)
        if j in (0, 1):
            raise CorruptInput(si - 1)
        if j == 2:
            while si < len(src) and src[si] in _NEWLINES:
                si += 1
            if si == len(src):
                raise CorruptInput(len(src))
            if src[si] != _PAD:
                raise CorruptInput(si - 1)
            si += 1
        while si < len(src) and src[si] in _NEWLINES:
            si += 1
        if si < len(src):
            raise CorruptInput(si)
        dlen = j
        end = True
        break
    val = dbuf[0] << 18 | dbuf[1] << 12 | dbuf[2] << 6 | dbuf[3]
    out += val.to_bytes(3, "big")[: dlen - 1]
    return si, end


def _decode(data: str | bytes, padded: bool) -> bytes:
    src = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if padded and len(src) % 4 == 0 and b"\n" not in src and b"\r" not in src:
        # Fast path for the common, well-formed case; validate=True rejects
        # everything Go would, and Go ignores the same trailing bits.
        try:
            return _b64.b64decode(src, validate=True)
        except ValueError:
            pass
    out = bytearray()
    si = 0
    while si < len(src):
        si, end = _decode_quantum(src, si, padded, out)
        if end:
            break
    return bytes(out)


def std_decode(data: str | bytes) -> bytes:
    """base64.StdEncoding.DecodeString."""
    return _decode(data, padded=True)


def raw_std_decode(data: str | bytes) -> bytes:
    """base64.RawStdEncoding.DecodeString."""
    return _decode(data, padded=False)


def std_encode(data: bytes) -> str:
    """base64.StdEncoding.EncodeToString."""
    return _b64.b64encode(data).decode("ascii")
