"""Personal identifiers at rest: encrypted, with a keyed blind index for exact lookup.

Resident ID numbers, passport numbers and phone numbers are stored only as

* ciphertext: ``v1:<cipher>:<base64(nonce || ciphertext || tag)>`` with AES-256-GCM by default
  or SM4-GCM (GB/T 32907) as an option, the record's kind bound in as associated data so a
  ciphertext moved to another column does not decrypt;
* a blind index: HMAC-SHA256 over the kind and the normalised value under a second key, so
  that "find the patient with this ID number" is an indexed equality without the database
  ever holding the number.

Both keys are derived with HKDF from one secret (``XIETONG_SECURITY_PII_KEY``), so a deployment
has one value to keep in its secret store. A database dump without that secret reveals no
identifier. See docs/adr/0011-personal-identifiers.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CipherName = Literal["aes-256-gcm", "sm4-gcm"]
_VERSION = "v1"
_NONCE = 12
_TAG = 16


class PiiError(Exception):
    """A stored value that does not decrypt: wrong key, or tampered with."""


class Sealer(Protocol):
    name: str

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes: ...


class _AesGcm:
    name = "aes-256-gcm"

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        nonce, body = sealed[:_NONCE], sealed[_NONCE:]
        return self._aead.decrypt(nonce, body, aad)


class _Sm4Gcm:
    name = "sm4-gcm"

    def __init__(self, key: bytes) -> None:
        self._key = key[:16]  # SM4 is a 128-bit cipher

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return nonce + body + encryptor.tag

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        nonce, body, tag = sealed[:_NONCE], sealed[_NONCE:-_TAG], sealed[-_TAG:]
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(body) + decryptor.finalize()


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"xietong-pii-v1", info=purpose).derive(
        secret.encode()
    )


@dataclass(frozen=True)
class SealedValue:
    ciphertext: str
    blind_index: str


class PiiProtector:
    """Encrypts, decrypts and blind-indexes identifiers. One per app, built from settings."""

    def __init__(self, secret: str, cipher: CipherName = "aes-256-gcm") -> None:
        enc_key = _derive(secret, b"encryption")
        self._index_key = _derive(secret, b"blind-index")
        self._sealers: dict[str, Sealer] = {
            "aes-256-gcm": _AesGcm(enc_key),
            "sm4-gcm": _Sm4Gcm(enc_key),
        }
        self._current = self._sealers[cipher]

    @property
    def cipher(self) -> str:
        return self._current.name

    def blind_index(self, kind: str, value: str) -> str:
        """Equal (kind, value) pairs give equal digests; nothing else can be learnt from it."""
        message = f"{kind}\x1f{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    def encrypt(self, kind: str, value: str) -> str:
        sealed = self._current.seal(value.encode(), kind.encode())
        return f"{_VERSION}:{self._current.name}:{base64.b64encode(sealed).decode()}"

    def decrypt(self, kind: str, token: str) -> str:
        version, _, rest = token.partition(":")
        name, _, payload = rest.partition(":")
        sealer = self._sealers.get(name)
        if version != _VERSION or sealer is None:
            raise PiiError("unknown ciphertext format")
        try:
            return sealer.open(base64.b64decode(payload, validate=True), kind.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise PiiError("ciphertext does not decrypt under this key") from exc

    def seal(self, kind: str, value: str) -> SealedValue:
        return SealedValue(self.encrypt(kind, value), self.blind_index(kind, value))
