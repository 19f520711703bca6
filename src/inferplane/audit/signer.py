"""The Ed25519 key that signs checkpoints, in the C2SP signed-note key formats, kept in a file
outside the database (made on first use, mode 0600).

- signer key (the file): ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>``
- verifier key (public, give it to whoever verifies): ``<name>+<hex key id>+<base64(0x01 ||
  32-byte public key)>``
- key id: the first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``, big-endian.

These are the formats of Go's ``golang.org/x/mod/sumdb/note``, so its tools read them too.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inferplane.errors import ConfigError

ED25519 = 0x01  # the signature type byte of Ed25519 in signed notes
KEY_MODE = 0o600


def check_name(name: str) -> str:
    """A key name: non-empty, no spaces, no ``+`` (the note formats' one rule)."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise ValueError(f"a key name has no spaces and no '+': {name!r}")
    return name


def key_id(name: str, public: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 key named ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes  # 32 bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public)

    def text(self) -> str:
        """The verifier key, ``<name>+<hex id>+<base64(0x01 || public)>``."""
        blob = base64.b64encode(bytes([ED25519]) + self.public).decode()
        return f"{self.name}+{self.id.hex()}+{blob}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


def parse_verifier(text: str) -> Verifier:
    """A verifier key from its text; ValueError when it is not one (or its id is wrong)."""
    name, _, rest = text.strip().partition("+")
    hex_id, _, blob = rest.partition("+")
    try:
        raw = base64.b64decode(blob, validate=True)
        wanted = bytes.fromhex(hex_id)
    except ValueError:
        raise ValueError(f"not a verifier key: {text!r}") from None
    if len(raw) != 33 or raw[0] != ED25519 or len(wanted) != 4:
        raise ValueError(f"not an Ed25519 verifier key: {text!r}")
    verifier = Verifier(check_name(name), raw[1:])
    if verifier.id != wanted:
        raise ValueError(f"the verifier key's id does not match its key: {text!r}")
    return verifier


@dataclass(frozen=True)
class Signer:
    name: str
    seed: bytes  # the 32-byte Ed25519 private key

    @property
    def verifier(self) -> Verifier:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return Verifier(self.name, public.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    def text(self) -> str:
        blob = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id.hex()}+{blob}"

    @classmethod
    def generate(cls, name: str) -> Signer:
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(check_name(name), seed)


def parse_signer(text: str) -> Signer:
    prefix, _, rest = text.strip().partition("PRIVATE+KEY+")
    name, _, rest = rest.partition("+")
    hex_id, _, blob = rest.partition("+")
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        raw = b""
    if prefix or len(raw) != 33 or raw[0] != ED25519:
        raise ValueError("not an Ed25519 signer key (PRIVATE+KEY+<name>+<id>+<key>)")
    signer = Signer(check_name(name), raw[1:])
    if signer.verifier.id.hex() != hex_id:
        raise ValueError("the signer key's id does not match its key")
    return signer


def load_signer(path: Path, name: str) -> Signer:
    """The signer key in ``path``, made there (mode 0600) when the file does not exist.

    Several processes starting at once make it once: the file is created exclusively and the
    losers read the winner's. A key whose name is not ``name`` is still used (its name is
    part of its id: renaming it would make a new key); :class:`ConfigError` when the file is
    not a key or is readable by others.
    """
    path = path.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        signer = Signer.generate(name)
        # Written whole under a name of its own, then linked into place: a process that finds
        # the file finds it complete, and of two processes making it, one link wins.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(signer.text() + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.link(draft, path)
            return signer
        except FileExistsError:
            pass  # another process made it a moment ago: read that one
        finally:
            draft.unlink()
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"the audit signing key {path} is readable by others; "
                          f"run `chmod 600 {path}`")
    try:
        return parse_signer(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path} is not an audit signing key: {exc}") from None
