"""Asking the running gateway's admin API from a command: its address from the configuration
(or ``--url``), the key from ``--key`` or ``$INFERPLANE_ADMIN_KEY`` (none needed from this
machine while no key exists), its error message printed as the command's."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from inferplane.config import Config

KEY_ENV = "INFERPLANE_ADMIN_KEY"
TIMEOUT_S = 30.0
err = Console(stderr=True, highlight=False)


def gateway_url(config: Config, url: str | None) -> str:
    if url is not None:
        return url.rstrip("/")
    host = config.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{config.server.port}"


def ask(method: str, base: str, path: str, key: str | None,
        params: dict[str, str] | None = None, absent: str | None = None, *,
        offline_ok: bool = False) -> Any:
    """The admin API's JSON answer at ``base + /admin/v1 + path``; exits 1 with its error, or
    with "no gateway answers" when nothing listens (None instead with ``offline_ok``: the
    command has another way), or with ``absent`` when the gateway has no such route (a 404
    without the API's error document)."""
    key = key or os.environ.get(KEY_ENV)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.request(method, f"{base}/admin/v1{path}", params=params or {},
                                 headers=headers, timeout=TIMEOUT_S)
    except httpx.ConnectError:
        if offline_ok:
            return None
        err.print(f"[bold red]error:[/] no gateway answers at {escape(base)}: start it "
                  "(`inferplane up`), or give its address with --url", soft_wrap=True)
        raise typer.Exit(1) from None
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = (absent if absent is not None and response.status_code == 404
                       else response.text[:500])
        err.print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
        raise typer.Exit(1)
    return response.json()
