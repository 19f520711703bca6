"""Checkpoints: a tree head as a C2SP signed note (c2sp.org/tlog-checkpoint and
c2sp.org/signed-note)::

    inferplane.local/audit/3f1c0e9a6b2d      <- origin: names the log
    1042                                     <- tree size, decimal
    0f4c...base64 root hash...=              <- root hash
                                             <- blank line
    — inferplane.local/audit/3f1c0e9a6b2d Ab3x...base64(key id || Ed25519 signature)...

The signature covers the text up to and including the root hash line's newline.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from inferplane.audit.merkle import HASH_SIZE
from inferplane.audit.signer import Signer, Verifier

DASH = "\u2014 "  # an em dash and a space start each signature line
MAX_SIGNATURES = 100


class CheckpointError(ValueError):
    """Text that is not a well-formed signed checkpoint."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The signed text: origin, size and base64 root, one line each."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    body: str  # the signed text: the checkpoint's lines (extension lines included)
    text: str  # the whole note, as signed and as saved
    signatures: tuple[tuple[str, bytes, bytes], ...]  # (key name, key id, signature)

    def verified_by(self, verifiers: list[Verifier]) -> list[Verifier]:
        """The ``verifiers`` whose signature on this note is present and valid."""
        body = self.body.encode()
        return [v for v in verifiers
                if any(name == v.name and kid == v.id and v.verify(body, sig)
                       for name, kid, sig in self.signatures)]


def sign(checkpoint: Checkpoint, signers: list[Signer]) -> SignedCheckpoint:
    """``checkpoint`` signed by each of ``signers``."""
    body = checkpoint.body()
    signatures = tuple((s.name, s.verifier.id, s.sign(body.encode())) for s in signers)
    lines = "".join(f"{DASH}{name} {base64.b64encode(kid + sig).decode()}\n"
                    for name, kid, sig in signatures)
    return SignedCheckpoint(checkpoint, body, f"{body}\n{lines}", signatures)


def parse(text: str) -> SignedCheckpoint:
    """A signed checkpoint from its text; :class:`CheckpointError` when it is malformed (the
    signatures are checked by :meth:`SignedCheckpoint.verified_by`)."""
    body, sep, sigs = text.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise CheckpointError("a signed note is text, a blank line and signature lines")
    lines = body.split("\n")
    if len(lines) < 3 or not lines[0] or not lines[1].isdigit() or (
            lines[1] != "0" and lines[1].startswith("0")):
        raise CheckpointError("a checkpoint starts with its origin, tree size and root hash")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        root = b""
    if len(root) != HASH_SIZE:
        raise CheckpointError("the checkpoint's root hash is not 32 bytes of base64")
    signatures = []
    for line in sigs[:-1].split("\n"):
        name, _, blob = line.removeprefix(DASH).partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raw = b""
        if not line.startswith(DASH) or not name or len(raw) < 5:
            raise CheckpointError(f"not a signature line: {line!r}")
        signatures.append((name, raw[:4], raw[4:]))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise CheckpointError("a signed note has 1 to 100 signatures")
    checkpoint = Checkpoint(lines[0], int(lines[1]), root)
    return SignedCheckpoint(checkpoint, body + "\n", text, tuple(signatures))
