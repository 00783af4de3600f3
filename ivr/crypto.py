"""Authenticated encryption for personal data at rest (AES-256-GCM from `cryptography`).

Used where a feature needs a caller's number back (a callback must dial it) and, later, for
call summaries. The key is generated per installation into state_dir/secrets.json; a copied
database file alone reveals nothing. Each value gets a fresh 96-bit nonce; the record's purpose
(e.g. "callback:<id>") is bound as associated data, so a ciphertext moved to another row fails to
decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
VERSION = b"\x01"


class DecryptionError(ValueError):
    """The value was not encrypted with this key for this purpose (or was altered)."""


class Sealer:
    def __init__(self, key_b64: str) -> None:
        key = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
        if len(key) != 32:
            raise ValueError("the data key must be 32 bytes (base64)")
        self._aead = AESGCM(key)

    @staticmethod
    def new_key() -> str:
        return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()

    def seal(self, plaintext: str, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), purpose.encode())

    def open(self, blob: bytes, purpose: str) -> str:
        if not blob or blob[:1] != VERSION or len(blob) < 1 + NONCE_BYTES + 16:
            raise DecryptionError("not a sealed value")
        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, purpose.encode()).decode()
        except InvalidTag:
            raise DecryptionError(f"cannot decrypt value for {purpose!r}") from None
