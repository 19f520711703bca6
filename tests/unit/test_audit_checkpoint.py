"""Checkpoints as C2SP signed notes: the key id rule computed independently, signatures that
verify only for the right key and text, the note formats round-tripped, and the signing key
file made once, mode 0600, outside the database."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from inferplane.audit.checkpoint import Checkpoint, CheckpointError, parse, sign
from inferplane.audit.signer import Signer, load_signer, parse_signer, parse_verifier
from inferplane.errors import ConfigError

SRC = Path(__file__).resolve().parents[2] / "src"


def test_key_id_is_the_c2sp_rule_and_the_note_has_its_exact_form() -> None:
    signer = Signer.generate("example.com/log")
    public = signer.verifier.public
    expected = hashlib.sha256(b"example.com/log\n\x01" + public).digest()[:4]
    assert signer.verifier.id == expected
    signed = sign(Checkpoint("example.com/log", 42, b"\x07" * 32), [signer])
    body = "example.com/log\n42\n" + base64.b64encode(b"\x07" * 32).decode() + "\n"
    assert signed.text.startswith(body + "\n\u2014 example.com/log ")
    assert signed.text.endswith("\n") and signed.text.count("\n") == 5
    blob = base64.b64decode(signed.text.rstrip("\n").rsplit(" ", 1)[1])
    assert blob[:4] == expected and len(blob) == 68
    # The signature is Ed25519 over the body, checked with the public key alone.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], body.encode())


def test_a_signed_checkpoint_verifies_only_with_its_key_and_text() -> None:
    signer, other = Signer.generate("log.example"), Signer.generate("log.example")
    signed = parse(sign(Checkpoint("log.example", 7, b"\x01" * 32), [signer]).text)
    assert signed.checkpoint == Checkpoint("log.example", 7, b"\x01" * 32)
    assert signed.verified_by([signer.verifier]) == [signer.verifier]
    assert signed.verified_by([other.verifier]) == []
    forged = parse(signed.text.replace("\n7\n", "\n8\n"))
    assert forged.verified_by([signer.verifier]) == []
    both = parse(sign(Checkpoint("log.example", 7, b"\x01" * 32), [signer, other]).text)
    assert len(both.verified_by([other.verifier, signer.verifier])) == 2


@pytest.mark.parametrize("text", [
    "", "log\n1\nAAAA\n\n\u2014 log AAAAAAA=\n", "log\n01\n" + "A" * 43 + "=\n\n\u2014 log x\n",
    "log\n1\n" + base64.b64encode(b"\0" * 32).decode() + "\n\n- log AAAAAAAAAAAA\n",
    "log\n1\n" + base64.b64encode(b"\0" * 32).decode() + "\n",
])
def test_malformed_notes_are_refused(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse(text)


def test_key_formats_round_trip_and_are_checked() -> None:
    signer = Signer.generate("a.example/log")
    assert parse_signer(signer.text()) == signer
    assert signer.text().startswith("PRIVATE+KEY+a.example/log+")
    assert parse_verifier(signer.verifier.text()) == signer.verifier
    name, _hex_id, blob = signer.verifier.text().split("+", 2)
    with pytest.raises(ValueError, match="id"):
        parse_verifier(f"{name}+00000000+{blob}")
    with pytest.raises(ValueError):
        Signer.generate("has space")


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    made = load_signer(path, "log.example")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signer(path, "another-name") == made  # kept, whatever name is asked for now
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signer(path, "log.example")
    path.chmod(0o600)
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match="not an audit signing key"):
        load_signer(path, "log.example")


def test_processes_starting_together_make_one_key(tmp_path: Path) -> None:
    path = tmp_path / "shared.key"
    code = ("import sys; from pathlib import Path; from inferplane.audit.signer import "
            "load_signer; print(load_signer(Path(sys.argv[1]), 'log').verifier.text())")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    keys = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    assert len(keys) == 1 and parse_signer(path.read_text()).verifier.text() in keys
