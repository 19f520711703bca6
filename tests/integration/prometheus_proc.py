"""A real Prometheus (Debian's ``prometheus`` package, installed by ``make services``) on a
free loopback port, scraping given targets every second, for the integration tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.services import stop_process

from .gateway_proc import free_port

SCRAPE_INTERVAL_S = 1


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to now."""
        r = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """The value of a one-series result, or None when there is none."""
        result = self.query(promql)
        return None if not result else float(result[0]["value"][1])

    def wait_for(self, promql: str, expected: float, timeout: float = 30.0) -> None:
        """Until ``promql`` evaluates to ``expected`` (the scrapes caught up)."""
        deadline = time.monotonic() + timeout
        while (got := self.scalar(promql)) != expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} is {got}, not {expected}")
            time.sleep(0.25)


def binary() -> str:
    path = shutil.which("prometheus")
    assert path is not None, "prometheus is not installed: run `make services`"
    return path


@contextmanager
def running_prometheus(root: Path, *targets: str,
                       rules: Path | None = None) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (``host:port``) every second, evaluating the rule file
    ``rules`` if given, its data in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "prometheus.yml"
    listed = ", ".join(f"'{t}'" for t in targets)
    config.write_text(
        f"global: {{scrape_interval: {SCRAPE_INTERVAL_S}s, "
        f"evaluation_interval: {SCRAPE_INTERVAL_S}s}}\n"
        + ("" if rules is None else f"rule_files: ['{rules}']\n")
        + "scrape_configs:\n  - job_name: inferplane\n"
        f"    static_configs: [{{targets: [{listed}]}}]\n")
    port = free_port()
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [binary(), f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root)
    prometheus = Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (root / "prometheus.log").read_text()[-3000:]
            try:
                if httpx.get(prometheus.url + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        yield prometheus
    finally:
        stop_process(proc)
        log.close()
