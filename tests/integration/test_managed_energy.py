"""Measured GPU energy end to end without a GPU: a managed vLLM (the stand-in server,
tests/engine_standin.py) on "GPU 0" of a stand-in NVML library (tests/nvml_standin/, compiled
here into ``libnvidia-ml.so.1`` and loaded by the real nvidia-ml-py binding through
``LD_LIBRARY_PATH``). The stand-in server advances the GPU's energy counter as it generates
tokens and as time passes; the ledger's per-request joules plus the idle joules must be the
counter's delta over the run (the issue's bar: 2%), longer requests getting more in
proportion. Without the library the same deployment's records are estimated."""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .gateway_proc import GatewayProc, running_gateway
from .test_managed_standin import config, standin_deployment

NVML_SOURCE = Path(__file__).resolve().parents[1] / "nvml_standin" / "nvml_standin.c"
FIRST_MJ = 7_200_000_000  # the GPU's counter when the gateway starts: 2 h at 1 kW
MJ_PER_TOKEN = 2000.0
IDLE_WATTS = 20.0
# (max_tokens, streamed, prompt words): three lengths, streamed and not, twice over
RUN = [(tokens, stream, words) for tokens, words in ((8, 4), (24, 12), (64, 32))
       for stream in (False, True)] * 2


@pytest.fixture(scope="session")
def nvml_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding the stand-in ``libnvidia-ml.so.1``."""
    pytest.importorskip("pynvml", reason="nvidia-ml-py is not installed")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the stand-in NVML library")
    folder = tmp_path_factory.mktemp("nvml")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o",
                    str(folder / "libnvidia-ml.so.1"), str(NVML_SOURCE)], check=True)
    return folder


def gpu_config(root: Path, counter: Path) -> str:
    standin = ("--energy-file", str(counter), "--mj-per-token", str(MJ_PER_TOKEN),
               "--idle-watts", str(IDLE_WATTS), "--token-s", "0.01")
    return config(root, standin_deployment(root, "gpu", "vllm", extra=", gpus: [0]",
                                           standin=standin))


def counter_j(path: Path) -> float:
    return sum(int(line) for line in path.read_text().split()) / 1000.0


def ask(gw: GatewayProc, max_tokens: int, stream: bool, words: int, cut: bool = False) -> str:
    """One request through the openai SDK (``cut``: a stream the client leaves after a few
    chunks); its request id."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="default", max_tokens=max_tokens, stream=stream,
        messages=[{"role": "user", "content": " ".join(["word"] * words)}])
    answer: Any = raw.parse()
    if cut:
        for _, _chunk in zip(range(4), answer, strict=False):
            pass
        answer.close()
        return str(raw.headers["x-request-id"])
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        text = answer.choices[0].message.content
    assert text == "tok " * max_tokens
    return str(raw.headers["x-request-id"])


def run(gw: GatewayProc) -> tuple[list[str], str]:
    """The run's requests, six at a time, and a stream the client leaves on the way; their
    request ids."""
    with ThreadPoolExecutor(6) as pool:
        cut = pool.submit(ask, gw, 200, True, 8, True)
        return list(pool.map(lambda job: ask(gw, *job), RUN)), cut.result()


def test_measured_energy_matches_the_gpu_counter(tmp_path: Path, nvml_library: Path) -> None:
    counter = tmp_path / "gpu-energy"
    counter.write_text(f"{FIRST_MJ}\n")
    env = {"LD_LIBRARY_PATH": str(nvml_library), "INFERPLANE_NVML_STANDIN_FILE": str(counter)}
    with running_gateway(tmp_path, gpu_config(tmp_path, counter), env=env) as gw:
        assert gw.readyz().json()["deployments"]["gpu"]["energy_method"] == "measured"
        time.sleep(1.5)  # idle: the GPU draws its idle watts, charged to no request
        ids, cut_id = run(gw)
        # the last request's end was the gateway's last reading: the counter now, give or take
        # the few milliseconds to the next lines (a tick may fall between them, reading idle)
        before = counter_j(counter)
        status = gw.readyz().json()["deployments"]["gpu"]
        after = counter_j(counter)
        metrics = httpx.get(gw.url + "/metrics").text
        rows, cut = [gw.ledger_row(i) for i in ids], gw.ledger_row(cut_id)
    first = FIRST_MJ / 1000.0
    assert {r["energy_method"] for r in [*rows, cut]} == {"measured"}
    assert cut["completion_tokens"] < 200 and cut["energy_j"] > 0  # what it used till it left
    requests_j = sum(r["energy_j"] for r in [*rows, cut])
    assert requests_j == pytest.approx(status["energy_charged_j"], rel=1e-9)
    assert status["energy_idle_j"] >= IDLE_WATTS * 1.0  # the idle second and more
    total = requests_j + status["energy_idle_j"]
    assert (before - first) * 0.98 <= total <= (after - first) * 1.02, \
        (total, before - first, after - first)
    # the tokens' energy is most of it: what the requests got is not mostly idle watts
    tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in [*rows, cut])
    assert requests_j >= 0.95 * tokens * MJ_PER_TOKEN / 1000.0
    # longer requests got more, in proportion to their tokens: each group's joules per token
    # within a factor of two of the others' (an interval's split follows the tokens the gateway
    # has counted by its end, so a busy event loop moves a few tokens to the next interval:
    # per request this is noisy, the shortest most), and every long request more than any
    # short one
    per_token = {n: sum(r["energy_j"] for r in rows if r["completion_tokens"] == n)
                 / sum(r["prompt_tokens"] + n for r in rows if r["completion_tokens"] == n)
                 for n, _, _ in RUN}
    print(f"\nrequests+idle {total:.1f} J, counter delta {before - first:.1f}.."
          f"{after - first:.1f} J, idle {status['energy_idle_j']:.1f} J, J/token by output"
          f" length {per_token}")
    assert max(per_token.values()) <= 2.0 * min(per_token.values()), per_token
    short = [r["energy_j"] for r in rows if r["completion_tokens"] == 8]
    long = [r["energy_j"] for r in rows if r["completion_tokens"] == 64]
    assert min(long) > max(short), (long, short)
    idle_line = [line for line in metrics.splitlines()
                 if line.startswith('inferplane_engine_idle_joules_total{deployment="gpu"}')]
    assert idle_line and float(idle_line[0].split()[-1]) >= IDLE_WATTS * 1.0, idle_line


def test_without_nvml_the_energy_is_estimated(tmp_path: Path) -> None:
    counter = tmp_path / "gpu-energy"
    counter.write_text(f"{FIRST_MJ}\n")
    with running_gateway(tmp_path, gpu_config(tmp_path, counter),
                         env={"LD_LIBRARY_PATH": str(tmp_path)}) as gw:  # no libnvidia-ml here
        assert "energy_method" not in gw.readyz().json()["deployments"]["gpu"]
        ids, cut_id = run(gw)
        rows = [gw.ledger_row(i) for i in [*ids, cut_id]]
    assert {r["energy_method"] for r in rows} == {"estimated"}
    assert all(r["energy_j"] > 0 for r in rows)
