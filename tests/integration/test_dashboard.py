"""The dashboard in real headless Chromium, against a real gateway whose ledger holds a day of
seeded history plus a few real requests, with a real Prometheus firing an alert: every chart
draws data, the console stays clean, a tenant's key sees only its tenant, a key without a
reading scope is refused. Screenshots are
kept in the test's temporary directory (and written to docs/images/ with
INFERPLANE_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane.ledger.record import UsageRecord
from inferplane.ledger.service import Ledger
from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway
from .prometheus_proc import running_prometheus

UPSTREAM_KEY = "sk-upstream-dashboard-5150"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard.png"
TIME_CHARTS = ("cost", "tokens", "requests", "energy", "carbon", "water", "latency", "ttft", "itl")
BAR_CHARTS = ("errors", "by-model", "by-deployment", "by-version", "by-tenant")
TENANTS = ("acme", "beta", "globex")
ERRORS = {3: (429, "rate_limit_error"), 5: (502, "upstream_error"), 7: (504, "timeout")}
RULES = """groups:
  - name: dashboard-test
    rules:
      - alert: ChatBudgetBurn
        expr: vector(1)
        labels: {severity: page, model: chat}
        annotations: {summary: chat burns its error budget}
      - alert: NeverFires
        expr: vector(1) == 2
"""


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return None if browser is None or driver is None else (browser, driver)


def seeded(now: float) -> list[UsageRecord]:
    """A day of history, one record every six minutes, over three tenants, two models, three
    deployments and versions, with streamed and failed requests."""
    out = []
    for i in range(240):
        chat = i % 4 != 0
        status, error = ERRORS.get(i % 17, (200, None))
        deployment = ("chat-a", "chat-b")[i % 2] if chat else "embed-a"
        base = UsageRecord(
            id=f"seed-{i:04d}", ts=now - 86_400 + 360 * i + 30, endpoint="/v1/chat/completions",
            model="chat" if chat else "embed", deployment=deployment, provider="openai",
            prompt_tokens=200 + 7 * (i % 13), completion_tokens=40 + 3 * (i % 11) if chat else 0,
            ttft_ms=80.0 + 9 * (i % 23) if chat else None,
            latency_ms=400.0 + 25 * (i % 19), status=status, error_type=error,
            finish_reason="stop", stream=chat and i % 5 != 0, engine_seconds=0.0,
            cost_usd=0.0004 * (1 + i % 5), energy_j=30.0 + i % 40, energy_method="estimated",
            co2_g=0.004 * (1 + i % 9), water_l=0.0002 * (1 + i % 6), region="eu",
            tenant=TENANTS[i % 3],
            version={"chat-a": "chat-v1", "chat-b": "chat-v2", "embed-a": "embed-v1"}[deployment],
        )
        out.append(base if status == 200 else replace(base, completion_tokens=0, ttft_ms=None))
    return out


@dataclass
class Site:
    gateway: GatewayProc
    config: Path
    keys: dict[str, str]
    records: list[UsageRecord]

    def cli(self, *args: str) -> str:
        done = subprocess.run([str(BIN / "inferplane"), *args, "--config", str(self.config)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    def api(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.gateway.url + path, timeout=30,
                             headers={"authorization": f"Bearer {key}"}, **kwargs)


def config_text(root: Path, upstream: UpstreamProcess, alerts_url: str) -> str:
    def dep(name: str, model: str, version: str) -> str:
        return (f"  - {{name: {name}, model: {model}, provider: openai, "
                f"base_url: '{upstream.url}/v1', api_key: 'env:UPSTREAM_KEY', "
                f"upstream_model: echo-1, version: {version}, "
                "price: {input_per_mtok: 2, output_per_mtok: 6}}\n")

    return (ledger_yaml(root) + "tenancy: {poll_interval_ms: 200}\n"
            "governance: {poll_interval_ms: 200}\n"
            f"observe: {{alerts_url: '{alerts_url}'}}\n"
            "models:\n  - name: chat\n  - name: embed\n"
            "deployments:\n" + dep("chat-a", "chat", "chat-v1") + dep("chat-b", "chat", "chat-v2")
            + dep("embed-a", "embed", "embed-v1")
            + "systems:\n  - name: triage\n    models: [chat]\n    high_risk: true\n"
              "    intended_purpose: Sorting support tickets by urgency\n"
              "    provider: Example GmbH\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dashboard")
    records = seeded(time.time())
    with Ledger.open(f"sqlite:///{root}/ledger.db", root / "seed-wal") as ledger:
        for record in records:
            ledger.append(record)
    with ExitStack() as stack:
        upstream = stack.enter_context(UpstreamProcess("dashboard", api_key=UPSTREAM_KEY,
                                                       args=["--no-log"]))
        (root / "rules.yml").write_text(RULES)
        prometheus = stack.enter_context(running_prometheus(root / "prometheus",
                                                            rules=root / "rules.yml"))
        gateway = stack.enter_context(running_gateway(
            root, config_text(root, upstream, prometheus.url + "/api/v1/alerts"),
            env={"UPSTREAM_KEY": UPSTREAM_KEY}))
        made = Site(gateway, gateway.config, {}, records)
        for name, tenant, scopes in (("admin", "ops", "admin"), ("viewer", "ops", "viewer"),
                                     ("acme", "acme", "read:ledger"),
                                     ("inference", "delta", "inference")):
            made.keys[name] = made.cli("keys", "create", "--tenant", tenant, "--scopes", scopes)
        time.sleep(0.5)  # the gateway sees the new keys at its next poll
        yield made


@pytest.fixture(scope="module")
def live(site: Site) -> Site:
    """A few real requests (streamed and not), a kill, a canary rolled back, an incident."""
    client = openai.OpenAI(base_url=site.gateway.url + "/v1", api_key=site.keys["inference"],
                           max_retries=0)
    for i in range(4):
        messages: Any = [{"role": "user", "content": f"count to {i + 3}, please"}]
        if i % 2:
            chunks = list(client.chat.completions.create(model="chat", messages=messages,
                                                         max_tokens=16, stream=True))
            assert chunks
        else:
            client.chat.completions.create(model="chat", messages=messages, max_tokens=16)
    admin = site.keys["admin"]
    killed = site.api("POST", "/admin/v1/kills", admin,
                      json={"kind": "deployment", "name": "embed-a", "reason": "leaking logs"})
    assert killed.status_code == 201, killed.text
    production = site.api("POST", "/admin/v1/models/chat-v1/rollout", admin,
                          json={"stage": "production"})
    assert production.status_code == 200, production.text
    rolled = site.api("POST", "/admin/v1/models/chat-v2/rollout", admin,
                      json={"stage": "canary", "percent": 10, "reason": "try v2"})
    assert rolled.status_code == 200, rolled.text
    back = site.api("POST", "/admin/v1/models/rollback", admin,
                    json={"model": "chat", "reason": "p95 regressed"})
    assert back.status_code == 200, back.text
    detected = datetime.fromtimestamp(time.time() - 30 * 3600, UTC).strftime("%Y-%m-%dT%H:%MZ")
    site.cli("incidents", "open", "--system", "triage", "--kind", "widespread",
             "--detected", detected, "--summary", "Urgent tickets ranked low")
    return site


def usage(site: Site, key: str, **params: Any) -> httpx.Response:
    return site.api("GET", "/admin/v1/dashboard/usage", key, params=params)


def wait_usage(site: Site, key: str, requests: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body = usage(site, key).json()
        if body["totals"]["requests"] >= requests or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.2)


# -- the API, as the page reads it --------------------------------------------------------


def test_usage_totals_are_the_records_of_the_window(live: Site) -> None:
    body = wait_usage(live, live.keys["viewer"], len(live.records) + 4)
    seeded = [r for r in live.records if r.ts >= body["since"]]
    totals = body["totals"]
    assert body["scope"] == "operator"
    assert totals["requests"] == len(seeded) + 4  # the four real requests
    real = totals["cost_usd"] - sum(r.cost_usd for r in seeded)
    assert real > 0  # the real requests were priced
    assert totals["errors"] == sum(r.status >= 400 for r in seeded)
    assert totals["water_l"] == pytest.approx(sum(r.water_l or 0 for r in seeded), rel=0.2)
    assert {e["type"] for e in body["errors"]} == {t for _, t in ERRORS.values()}
    assert sum(b["requests"] for b in body["buckets"]) == totals["requests"]
    assert [g["name"] for g in body["breakdowns"]["version"]] != []
    assert {g["name"] for g in body["breakdowns"]["tenant"]} >= set(TENANTS)
    assert totals["itl_ms"]["p50"] is not None and totals["ttft_ms"]["p95"] is not None


def test_a_tenant_key_sees_only_its_tenant_whatever_it_asks(live: Site) -> None:
    wanted = [r for r in live.records if r.tenant == "acme"]
    for asked in ({}, {"tenant": "beta"}):
        body = usage(live, live.keys["acme"], **asked).json()
        assert body["scope"] == "tenant" and body["tenant"] == "acme"
        assert [g["name"] for g in body["breakdowns"]["tenant"]] == ["acme"]
        in_window = [r for r in wanted if r.ts >= body["since"]]
        assert body["totals"]["requests"] == len(in_window)
        assert body["totals"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in in_window))
        assert body["tenants"] == ["acme"]
    beta = usage(live, live.keys["viewer"], tenant="beta").json()
    assert [g["name"] for g in beta["breakdowns"]["tenant"]] == ["beta"]
    refused = live.api("GET", "/admin/v1/dashboard/operations", live.keys["acme"])
    assert refused.status_code == 403 and "viewer" in refused.json()["error"]["message"]


def test_a_key_without_a_reading_scope_is_refused(live: Site) -> None:
    for path in ("/admin/v1/dashboard/usage", "/admin/v1/dashboard/operations"):
        refused = live.api("GET", path, live.keys["inference"])
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["type"] == "permission_error"
        assert live.api("GET", path, "ipk_aaaaaaaaaaaa_" + "x" * 43).status_code == 401


def test_operations_list_what_fires_and_what_changed(live: Site) -> None:
    body = live.api("GET", "/admin/v1/dashboard/operations", live.keys["viewer"]).json()
    kinds = {(a["kind"], a["severity"], a["subject"]) for a in body["alerts"]}
    assert ("kill", "warning", "deployment embed-a") in kinds
    assert ("incident_deadline", "warning", "system triage") in kinds
    assert ("rollback", "info", "version chat-v2") in kinds
    assert ("prometheus", "critical", "ChatBudgetBurn (chat)") in kinds
    assert not any("NeverFires" in a["subject"] for a in body["alerts"])
    assert body["alerts"][0]["severity"] == "critical"  # the most severe first
    assert [k["name"] for k in body["kills"]] == ["embed-a"]
    actions = [c["action"] for c in body["changes"]]
    assert actions[:4] == ["rollback", "rollout", "rollout", "kill"]  # newest first


def test_the_endpoints_are_in_the_admin_openapi_document(live: Site) -> None:
    paths = httpx.get(live.gateway.url + "/admin/openapi.json", timeout=10).json()["paths"]
    assert "/v1/dashboard/usage" in paths and "/v1/dashboard/operations" in paths
    assert "tenant" in paths["/v1/dashboard/usage"]["get"]["description"]


def test_bad_windows_are_refused_in_the_openai_error_format(live: Site) -> None:
    reversed_window = usage(live, live.keys["viewer"], since=2000, until=1000)
    assert reversed_window.status_code == 400
    assert reversed_window.json()["error"]["param"] == "since"
    assert usage(live, live.keys["viewer"], bucket_s=5).status_code == 400
    too_fine = usage(live, live.keys["viewer"], since=0, until=300 * 86_400, bucket_s=60)
    assert too_fine.status_code == 400 and too_fine.json()["error"]["param"] == "bucket_s"


def test_the_page_and_its_files_come_from_the_gateway(live: Site) -> None:
    page = httpx.get(live.gateway.url + "/dashboard", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for asset in ("dashboard.js", "dashboard.css"):
        assert f"/dashboard/{asset}" in page.text
        assert httpx.get(f"{live.gateway.url}/dashboard/{asset}", timeout=10).status_code == 200
    assert "http://" not in page.text.replace("http://www.w3.org", "")
    assert "https://" not in page.text


# -- the page in Chromium -----------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    found = chromium_paths()
    if found is None:
        pytest.skip("chromium and chromedriver are not installed (Debian: chromium, "
                    "chromium-driver)")
    return found


def open_browser(paths: tuple[str, str]) -> Any:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,2200", "--force-device-scale-factor=1", "--lang=en-GB"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))


def sign_in(driver: Any, site: Site, key: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(site.gateway.url + "/dashboard")
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.ID, "key-dialog").is_displayed())
    driver.find_element(By.ID, "key-input").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait_loaded(driver)


def wait_loaded(driver: Any, after: str = "") -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(d: Any) -> str | bool:
        stamp = d.execute_script("return document.body.dataset.loaded || ''")
        return str(stamp) if stamp and stamp != after else False

    return str(WebDriverWait(driver, 30).until(loaded))


def marks(driver: Any, chart: str) -> int:
    return int(driver.execute_script(
        "return document.querySelectorAll(`[data-chart=\"${arguments[0]}\"] .mark`).length",
        chart))


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def screenshot(driver: Any, path: Path) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1600, int(height) + 40)
    time.sleep(0.4)  # the charts redraw at the new size
    driver.save_screenshot(str(path))


def test_every_chart_draws_the_seeded_ledger(live: Site, browser_paths: tuple[str, str],
                                             tmp_path: Path) -> None:
    wait_usage(live, live.keys["viewer"], len(live.records) + 4)
    driver = open_browser(browser_paths)
    try:
        sign_in(driver, live, live.keys["viewer"])
        counts = {chart: marks(driver, chart) for chart in TIME_CHARTS + BAR_CHARTS}
        assert all(n > 0 for n in counts.values()), counts
        assert counts["by-tenant"] >= len(TENANTS) and counts["errors"] == len(ERRORS)
        assert counts["by-version"] == 3
        assert counts["cost"] >= 90  # a bar per bucket with records: most of 96
        assert "operator view" in text_of(driver, "who")
        alerts = text_of(driver, "alerts")
        assert "deployment embed-a" in alerts and "system triage" in alerts
        assert "version chat-v2" in alerts and "chat burns its error budget" in alerts
        assert "Drift detection not configured." in text_of(driver, "drift")
        changes = text_of(driver, "changes")
        assert "leaking logs" in changes and "p95 regressed" in changes
        assert "embed" in text_of(driver, "breakdown")
        screenshot(driver, tmp_path / "dashboard-operator.png")
        if os.environ.get("INFERPLANE_UPDATE_SCREENSHOTS"):
            shutil.copyfile(tmp_path / "dashboard-operator.png", DOCS_IMAGE)
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_the_page_filters_by_model_and_tenant(live: Site, browser_paths: tuple[str, str],
                                              tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = open_browser(browser_paths)
    try:
        sign_in(driver, live, live.keys["viewer"])
        stamp = str(driver.execute_script("return document.body.dataset.loaded"))
        Select(driver.find_element(By.ID, "f-model")).select_by_value("embed")
        stamp = wait_loaded(driver, stamp)
        assert marks(driver, "by-model") == 1 and marks(driver, "by-version") == 1
        assert marks(driver, "itl") == 0  # embeddings stream nothing
        Select(driver.find_element(By.ID, "f-tenant")).select_by_value("beta")
        wait_loaded(driver, stamp)
        assert marks(driver, "by-tenant") == 1
        screenshot(driver, tmp_path / "dashboard-filtered.png")
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_a_tenant_key_sees_its_own_figures_in_the_page(live: Site,
                                                      browser_paths: tuple[str, str],
                                                      tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = open_browser(browser_paths)
    try:
        sign_in(driver, live, live.keys["acme"])
        assert "tenant view · acme" in text_of(driver, "who")
        tenant = driver.find_element(By.ID, "f-tenant")
        assert not tenant.is_enabled() and tenant.get_attribute("value") == "acme"
        assert marks(driver, "by-tenant") == 1
        rows = driver.find_elements(By.CSS_SELECTOR, "#breakdown-tabs button[data-dim=tenant]")
        rows[0].click()
        cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR,
                                                      "#breakdown tbody td:first-child")]
        assert cells == ["acme"]
        expected = usage(live, live.keys["acme"]).json()["totals"]["requests"]
        assert text_of(driver, "kpis").split("\n")[1] == str(expected)
        for panel in ("alerts", "changes", "drift"):
            assert "operator (viewer) keys only" in text_of(driver, panel)
        screenshot(driver, tmp_path / "dashboard-tenant.png")
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_the_page_refuses_a_key_without_a_reading_scope(live: Site,
                                                       browser_paths: tuple[str, str],
                                                       tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = open_browser(browser_paths)
    try:
        driver.get(live.gateway.url + "/dashboard")
        driver.find_element(By.ID, "key-input").send_keys(live.keys["inference"])
        driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
        WebDriverWait(driver, 20).until(lambda d: "lacks" in text_of(d, "key-error"))
        assert driver.find_element(By.ID, "key-dialog").is_displayed()
        assert marks(driver, "cost") == 0
        screenshot(driver, tmp_path / "dashboard-refused.png")
        # the only console errors: the refused requests themselves, as the browser logs them
        assert all("403" in e["message"] for e in console_errors(driver))
    finally:
        driver.quit()


DRIFT = {"generated_at": "2026-01-01T00:00:00Z", "reports": [
    {"model": "chat", "tenant": None, "feature": "prompt_tokens", "test": "ks",
     "statistic": 0.41, "p_value": 0.0002, "threshold": 0.2, "drifted": True,
     "reference_n": 5000, "current_n": 800},
    {"model": "chat", "tenant": "acme", "feature": "latency_ms", "test": "psi",
     "statistic": 0.05, "p_value": None, "threshold": 0.25, "drifted": False,
     "reference_n": 5000, "current_n": 300}]}


def with_drift_endpoint(driver: Any, status: int) -> None:
    """Make the page see a gateway with drift detection (``GET /admin/v1/drift``, built
    elsewhere) answering ``status`` with the agreed document: the admin API's own document
    gains the path and the endpoint's answer comes from here, everything else from the
    gateway."""
    import json

    script = """
      const drift = DRIFT, status = STATUS, realFetch = window.fetch.bind(window);
      window.fetch = async (url, init) => {
        if (String(url).startsWith("/admin/v1/drift")) {
          const body = status === 200 ? drift : {error: {message: "Not Found"}};
          return new Response(JSON.stringify(body), {status,
            headers: {"content-type": "application/json"}});
        }
        const response = await realFetch(url, init);
        if (String(url) !== "/admin/openapi.json") return response;
        const doc = await response.json();
        doc.paths["/v1/drift"] = {get: {}};
        return new Response(JSON.stringify(doc), {status: 200,
          headers: {"content-type": "application/json"}});
      };""".replace("DRIFT", json.dumps(DRIFT)).replace("STATUS", str(status))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})


def test_the_drift_panel_reads_the_drift_endpoint(live: Site, browser_paths: tuple[str, str],
                                                  tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = open_browser(browser_paths)
    try:
        with_drift_endpoint(driver, 200)
        sign_in(driver, live, live.keys["viewer"])
        rows = driver.find_elements(By.CSS_SELECTOR, "#drift tbody tr")
        assert [r.text.split()[0] for r in rows] == ["chat", "chat"]
        assert "drifted" in rows[0].text.lower() and "prompt_tokens" in rows[0].text
        assert "acme" in rows[1].text and rows[1].text.lower().endswith("ok")
        assert "drift chat prompt_tokens: ks 0.41 over 0.2" in text_of(driver, "alerts")
        screenshot(driver, tmp_path / "dashboard-drift.png")
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_a_drift_endpoint_answering_404_reads_as_not_configured(
        live: Site, browser_paths: tuple[str, str]) -> None:
    driver = open_browser(browser_paths)
    try:
        with_drift_endpoint(driver, 404)
        sign_in(driver, live, live.keys["viewer"])
        assert text_of(driver, "drift") == "Drift detection not configured."
        assert marks(driver, "cost") > 0
        assert console_errors(driver) == []
    finally:
        driver.quit()
