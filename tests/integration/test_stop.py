"""Stopping says so: Ctrl-C on a terminal, under ``make run`` as the README starts it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from .gateway_proc import BIN, free_port, ledger_yaml
from .terminal import read_until, spawn

# A hosted deployment nothing answers: the gateway is ready at once, and a request fails fast.
CONFIG = ("models: [{name: chat}]\ndeployments:\n"
          "  - {name: dead, model: chat, provider: openai, base_url: 'http://127.0.0.1:9/v1'}\n")


def test_ctrl_c_under_make_run_drains_reports_the_ledger_and_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "inferplane.yaml"
    config.write_text(ledger_yaml(tmp_path) + CONFIG)
    port = free_port()
    (tmp_path / "Makefile").write_text(
        f"run:\n\t{BIN / 'inferplane'} up --config {config} --port {port}\n")
    pid, terminal = spawn(["make", "run"], cwd=tmp_path)  # on a terminal, as a user runs it
    started = read_until(terminal, b"engines are loading", 60)
    assert b"listening on" in started, started.decode(errors="replace")
    r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                   json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code >= 500  # one request, one record
    os.write(terminal, b"\x03")  # Ctrl-C: the terminal signals its foreground process group
    out = read_until(terminal, None, 60).decode(errors="replace")  # to the end
    _, status = os.waitpid(pid, 0)
    assert "Inferplane stopping (SIGINT)" in out and "draining" in out, out
    assert "Inferplane stopped; ledger flushed: 1 record this run" in out, out
    assert "Traceback" not in out and "Interrupt" not in out, out
    assert os.waitstatus_to_exitcode(status) == 0, out
