"""The operator's Ed25519 signature over each record (pure: no I/O).

The hash chain alone shows that records were changed, not who changed them: anyone who can
write records can edit one, re-hash everything after it and fix `status.latestRecord`. A
signature over each record's hash, made with a key only the operator holds, closes that:
a re-hashed record no longer matches its signature, and a chain re-signed with another key
names another key. Ed25519 rather than an HMAC, so that an auditor checks the records with
the public key alone and can never sign one.

The signing key is derived from the secret the operator already holds for provenance, so
there is no second secret to provision, back up or rotate in step.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM: Final = "ed25519"
_SEED_CONTEXT: Final = b"aideploy record signing v1\x00"
_MESSAGE_CONTEXT: Final = b"aideploy record v1\x00"
_KEY_ID_LENGTH: Final = 16


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """`ed25519:<16 hex>`: the first 64 bits of the SHA-256 of the raw public key."""
    return f"{ALGORITHM}:{hashlib.sha256(_raw(public_key)).hexdigest()[:_KEY_ID_LENGTH]}"


def _message(record_hash: str) -> bytes:
    return _MESSAGE_CONTEXT + record_hash.encode("utf-8")


@dataclass(frozen=True)
class RecordSigner:
    """The operator's record signing key."""

    private_key: Ed25519PrivateKey

    @classmethod
    def from_secret(cls, secret: bytes) -> RecordSigner:
        """Deterministic: the same secret gives the same key on every replica and restart."""
        seed = hashlib.sha256(_SEED_CONTEXT + secret).digest()
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def public_key_pem(self) -> str:
        return public_key_pem(self.public_key)

    def public_key_base64(self) -> str:
        """The raw key in base64: one line, for logs; `load_public_key` reads it."""
        return base64.b64encode(_raw(self.public_key)).decode("ascii")

    def sign(self, record_hash: str) -> dict[str, str]:
        """`spec.signature` of a record whose `spec.hash` is `record_hash`. The hash covers
        every other field, so signing it signs the whole record."""
        value = self.private_key.sign(_message(record_hash))
        return {
            "keyId": self.key_id,
            "publicKey": self.public_key_base64(),
            "value": base64.b64encode(value).decode("ascii"),
        }


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class PublicKeyError(ValueError):
    """A public key given to `verify` cannot be read."""


def load_public_key(text: str) -> Ed25519PublicKey:
    """A PEM public key (as `aideploy-operator --print-record-public-key` prints it, `#`
    comment lines allowed), or the base64 of the raw 32 bytes (as the operator logs it)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    stripped = "\n".join(lines).strip()
    if not stripped:
        raise PublicKeyError("is empty: give the operator's PEM public key or its base64")
    if stripped.startswith("-----BEGIN"):
        try:
            loaded = serialization.load_pem_public_key(stripped.encode("ascii"))
        except (ValueError, TypeError) as error:
            raise PublicKeyError(f"not a PEM public key: {error}") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise PublicKeyError(
                "not an Ed25519 public key: the operator signs records with Ed25519"
            )
        return loaded
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise PublicKeyError(
            "neither a PEM public key nor the base64 of a raw Ed25519 key"
        ) from None
    if len(raw) != 32:
        raise PublicKeyError(f"a raw Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


SignatureProblem = Literal["unsigned", "bad", "untrusted"]


@dataclass(frozen=True)
class SignatureCheck:
    """What one record's signature says: the key it names (None when unsigned), and the
    problem with it, if any, in words."""

    key_id: str | None
    problem: SignatureProblem | None = None
    message: str = ""


def check_signature(spec: Mapping[str, Any], trusted: Iterable[Ed25519PublicKey]) -> SignatureCheck:
    """Check a record's signature against its own hash and the key it names; with trusted
    keys, that key must also be one of them. An unsigned record is only a problem when
    keys are trusted (it cannot be authenticated) — `verify_chain` decides the rest."""
    trusted_ids = {key_id(key) for key in trusted}
    signature = spec.get("signature")
    if signature is None:
        if not trusted_ids:
            return SignatureCheck(None)
        return SignatureCheck(None, "unsigned", "is not signed, so it cannot be authenticated")
    if not isinstance(signature, Mapping):
        return SignatureCheck(None, "bad", "has a spec.signature that is not an object")
    named = str(signature.get("keyId") or "")
    try:
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(str(signature.get("publicKey") or ""), validate=True)
        )
        value = base64.b64decode(str(signature.get("value") or ""), validate=True)
    except (binascii.Error, ValueError):
        return SignatureCheck(named or None, "bad", "has a signature that cannot be read")
    if key_id(public) != named:
        return SignatureCheck(named, "bad", f"names key {named} but carries another public key")
    try:
        public.verify(value, _message(str(spec.get("hash") or "")))
    except InvalidSignature:
        return SignatureCheck(
            named,
            "bad",
            f"does not match its signature by {named}: the record was changed after the "
            "operator signed it",
        )
    if trusted_ids and named not in trusted_ids:
        return SignatureCheck(
            named,
            "untrusted",
            f"is signed by {named}, which is not a trusted key: the records were re-signed by "
            "someone else, or the operator's key changed",
        )
    return SignatureCheck(named, None)
