"""An engine server Inferplane starts and supervises (``provider: managed``, ``engine: {kind:
llama-server | vllm | sglang}``), reached over its OpenAI-compatible API like any other.

Its command line comes from the engine settings (``engines/launch.py``), its program from this
machine (``engines/programs.py``), its supervision from ``engines/managed.py``. While it is down
or restarting, requests get 503 (``engine_unavailable``), as they do from the embedded engine;
a request whose connection to it breaks mid-way too (it died under the request).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Mapping, MutableMapping
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferplane.engines.engine_energy import EngineEnergy, engine_energy
from inferplane.engines.engine_metrics import SOURCES, EngineReading
from inferplane.engines.launch import Launch, arguments
from inferplane.engines.managed import ManagedEngine, ServerRun, ServerSpec
from inferplane.engines.model_files import cache_dir, resolve_model
from inferplane.engines.programs import check_model_file, check_port, free_port, program
from inferplane.engines.scraper import EngineScraper
from inferplane.engines.step_log import StepLog
from inferplane.errors import ConfigError, EngineStartError, EngineUnavailable, UpstreamError
from inferplane.metering.tokens import estimate_tokens, request_chars
from inferplane.protocol.types import (
    Endpoint,
    Finished,
    GenerationRequest,
    Relayed,
    Started,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageSink,
)
from inferplane.providers.base import register
from inferplane.providers.openai_compat import OpenAICompatProvider

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig, EngineConfig

HOST = "127.0.0.1"
# the upstream errors that mean the server went away under the request (or is not there)
_GONE = frozenset({"upstream_unreachable", "upstream_disconnected"})
GPU_KINDS = frozenset({"vllm", "sglang"})
_PATHS: dict[str, str] = {"chat.completions": "chat/completions", "completions": "completions",
                          "embeddings": "embeddings"}


def log_path(deployment: DeploymentConfig) -> Path:
    engine = deployment.engine
    assert engine is not None
    if engine.log_file is not None:
        return Path(engine.log_file).expanduser()
    return cache_dir() / "engines" / f"{deployment.name}.log"


@register
class ManagedEngineProvider(OpenAICompatProvider):
    name = "managed"
    endpoints = frozenset({"chat.completions", "completions"})
    default_base_url = f"http://{HOST}"

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment)
        engine = deployment.engine
        assert engine is not None, "config validation guarantees an engine for managed"
        self.engine_config: EngineConfig = engine
        self.upstream_model = deployment.upstream_model or deployment.model
        self.model_path: str | None = None  # resolved at start (a built-in is assembled)
        self.readings: Mapping[str, EngineReading] = {}  # its scraper's (load_scraper)
        self.energy: EngineEnergy | None = None  # measured energy, where NVML reads its GPUs
        self.engine = ManagedEngine(
            deployment.name,
            ServerSpec(log_path=log_path(deployment), startup_timeout_s=engine.startup_timeout_s,
                       stop_timeout_s=engine.stop_timeout_s),
            self._prepare,
        )

    def _prepare(self) -> ServerRun:
        """The next start's command line: settings checked, a port chosen."""
        e = self.engine_config
        argv0 = program(e.kind, e.command)
        assert self.model_path is not None
        if e.kind == "llama-server":
            check_model_file(Path(self.model_path))
        if e.port is not None:
            check_port(HOST, e.port)
        port = e.port or free_port(HOST)
        launch = Launch(
            kind=e.kind, model=self.model_path, served_name=self.upstream_model, host=HOST,
            port=port, parallel=e.parallel, context=e.context, batch=e.batch, threads=e.threads,
            tensor_parallel=e.tensor_parallel, quantization=e.quantization,
            gpu_memory_share=e.gpu_memory_share, draft_model=e.draft_model,
            draft_tokens=e.draft_tokens,
            chat_template=e.chat_template if e.kind == "llama-server" else None,
            extra=tuple(e.args))
        return ServerRun([*argv0, *arguments(launch)], HOST, port)

    async def start(self) -> None:
        e = self.engine_config
        if e.kind == "llama-server":
            try:
                path = await asyncio.to_thread(resolve_model, e.model)
            except ConfigError as exc:
                raise EngineStartError(str(exc)) from None
            self.model_path = str(path)
        else:
            self.model_path = e.model
        await super().start()
        await self.engine.start()
        gpus = e.gpus if e.gpus is not None else (
            list(range(e.tensor_parallel)) if e.kind in GPU_KINDS else [])
        self.energy = engine_energy(gpus) if gpus else None
        if self.energy is not None:
            self.energy.start()

    async def stop(self) -> None:
        if self.energy is not None:
            await self.energy.stop()
        await self.engine.stop()
        await super().stop()

    @property
    def ready(self) -> bool:
        return self.engine.ready and self.http.started

    def url(self, endpoint: Endpoint) -> str:
        run = self.engine.run
        root = run.url if run is not None else self.base_url
        return f"{root}/v1/{_PATHS[endpoint]}"

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "ready": self.ready, "kind": self.engine_config.kind, "pid": self.engine.pid,
            "restarts": self.engine.restarts, "url": self.engine.url,
            "log": str(self.engine.spec.log_path),
        }
        reading = self.readings.get(self.deployment.name)
        if reading is not None and self.ready:
            status.update(reading.load.as_status())
        if self.energy is not None:  # joules given to requests, and idle joules, so far
            status["energy_method"] = self.energy.method
            status["energy_charged_j"] = self.energy.split.charged_j
            status["energy_idle_j"] = self.energy.split.idle_j
        return status

    def load_scraper(self, readings: MutableMapping[str, EngineReading]
                     ) -> EngineScraper | None:
        d, e = self.deployment, self.engine_config
        if e.kind not in SOURCES:
            return None
        self.readings = readings
        steps = StepLog(d.name, d.hardware.accelerator if d.hardware else "cpu",
                        e.planner_model or self.upstream_model,
                        kv_positions=e.parallel * e.context, tp=e.tensor_parallel)
        return EngineScraper(d.name, e.kind, self.engine.current_url, e.metrics_interval_s,
                             readings, steps)

    def describe(self) -> str:
        e = self.engine_config
        return (f"{e.kind} {self.upstream_model} ({e.parallel} parallel x {e.context} tokens), "
                f"log {self.engine.spec.log_path}")

    async def stream(
        self, request: GenerationRequest, meter: UsageSink
    ) -> AsyncGenerator[StreamEvent, None]:
        if not self.engine.ready:
            raise EngineUnavailable(f"engine {self.deployment.name!r} is not ready; "
                                    "retry shortly")
        try:
            async with aclosing(self._measured(request, meter)) as events:
                async for event in events:
                    yield event
        except UpstreamError as exc:
            if exc.code in _GONE:
                raise EngineUnavailable(
                    f"engine {self.deployment.name!r} stopped during the request") from exc
            raise

    async def _measured(self, request: GenerationRequest, meter: UsageSink
                        ) -> AsyncGenerator[StreamEvent, None]:
        """The server's events, the final one with the request's measured energy where its
        GPUs' counters are read (``metering/interval_energy.py``)."""
        energy = self.energy
        if energy is None:
            async with aclosing(super().stream(request, meter)) as events:
                async for event in events:
                    yield event
            return
        energy.open(request.id)
        counted, finished = 0, False
        # read as a stream even where the client waits for the whole answer, so that its
        # tokens count in the intervals they were generated in, not all at its end
        upstream = request if request.stream else dataclasses.replace(request, stream=True,
                                                                      wire=None)
        try:
            async with aclosing(super().stream(upstream, meter)) as events:
                async for event in events:
                    if isinstance(event, Started):  # the prompt went through: its tokens
                        prompt = event.prompt_tokens or estimate_tokens(request_chars(request))
                        energy.started(request.id, prompt)
                        counted += prompt
                    elif tokens := streamed_tokens(event):
                        energy.tokens(request.id, tokens)
                        counted += tokens
                    elif isinstance(event, Finished):
                        usage = event.usage
                        total = usage.prompt_tokens + usage.completion_tokens
                        joules = energy.close(request.id, max(0, total - counted))
                        finished = True
                        event = dataclasses.replace(event, energy_j=joules,
                                                    energy_method=energy.method)
                    yield event
        finally:
            if not finished:  # closed early or failed: what it used is still its own
                meter.energy(energy.abandon(request.id), energy.method)


def streamed_tokens(event: StreamEvent) -> int:
    """The output tokens a stream event carries, for the energy split as the stream goes: the
    count where the server gives one, else one per piece of text or tool-call arguments (an
    OpenAI-compatible server sends a chunk per decode step; the final usage corrects the
    total at the end).

    >>> streamed_tokens(TextDelta("a b", tokens=2)), streamed_tokens(TextDelta("a b"))
    (2, 1)
    >>> streamed_tokens(Relayed(b"...", deltas=3, chars=12)), streamed_tokens(TextDelta(""))
    (3, 0)
    """
    if isinstance(event, TextDelta):
        return event.tokens or (1 if event.text else 0)
    if isinstance(event, Relayed):
        return event.deltas
    if isinstance(event, ToolCallDelta):
        return 1
    return 0

