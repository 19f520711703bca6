"""The sections for the gateway process itself: its HTTP listener (``server``), its SQL
database (``store``) and its write-ahead usage log (``ledger``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from inferplane.config.problems import Section, invalid, secret_url

_STORE_SCHEMES = ("sqlite://", "postgresql://", "postgresql+", "postgres://")


class ServerConfig(Section):
    """The HTTP listener."""

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8080, ge=1, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0)
    shutdown_grace_s: float = Field(30.0, ge=0)


class StoreConfig(Section):
    """The SQL database: SQLite (embedded default) or PostgreSQL."""

    url: str = Field(
        "sqlite:///~/.inferplane/inferplane.db",
        examples=["postgresql://inferplane@db.internal/inferplane"],
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        url = secret_url(url, "store.url")
        if not url.startswith(_STORE_SCHEMES):
            raise invalid(
                "store_url",
                "the store URL must start with sqlite:// or postgresql://",
                "write e.g. `url: sqlite:///~/.inferplane/inferplane.db` or "
                "`url: postgresql://user@host/dbname`",
            )
        return url


class LedgerConfig(Section):
    """The write-ahead usage log and how often it is committed."""

    # None: a directory of the store's own under ~/.inferplane/ledger (ledger/waldir.py)
    dir: str | None = Field(None, min_length=1, examples=["/var/lib/inferplane/wal"])
    commit_interval_ms: int = Field(250, gt=0)
    commit_batch: int = Field(1000, gt=0)
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_ms: int = Field(200, gt=0)
    # How long usage records are kept, in days; None: forever. Inferplane deletes nothing
    # itself: this is the policy whatever prunes the store follows, checked against the
    # six months a high-risk system's logs are kept at least (docs/compliance.md).
    retention_days: int | None = Field(None, ge=1, examples=[365])
