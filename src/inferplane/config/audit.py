"""The ``audit`` section: the tamper-evident audit log's signed checkpoints (docs/audit.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from inferplane.config.problems import Section, invalid


class AuditConfig(Section):
    """How often checkpoints are signed, with which key, under which log name."""

    # A signed checkpoint of the tree head every this many seconds, when the tree grew.
    checkpoint_interval_s: float = Field(60.0, gt=0, le=86_400)
    # The Ed25519 signing key (made on first start, mode 0600), kept out of the database.
    # None: `audit-signer.key` in the ledger's WAL directory (ledger.dir or its default).
    key_file: str | None = Field(None, min_length=1, examples=["/etc/inferplane/audit.key"])
    # The log's name, the first line of its checkpoints. None: derived from the store's id.
    origin: str | None = Field(None, min_length=1, max_length=200,
                               examples=["audit.example.com/inferplane"])

    # How long audit entries are kept, in days; None: forever (as ``ledger.retention_days``).
    retention_days: int | None = Field(None, ge=1, examples=[3650])

    @field_validator("origin")
    @classmethod
    def _one_word(cls, origin: str | None) -> str | None:
        if origin is not None and (any(c.isspace() for c in origin) or "+" in origin):
            raise invalid("audit_origin", "the origin has no spaces and no '+'",
                          "write e.g. `origin: audit.example.com/inferplane`")
        return origin
