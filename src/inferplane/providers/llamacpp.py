"""The embedded llama.cpp engine as a provider: a supervised worker process on this machine."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from inferplane.engines.chat_template import TEMPLATES
from inferplane.engines.model_files import display_name
from inferplane.engines.supervisor import EngineSupervisor, WorkerSpec
from inferplane.errors import ContextLengthExceeded, EngineUnavailable, InvalidRequest
from inferplane.metering.hardware import watts_per_core
from inferplane.protocol.types import (
    CONTINUOUS_USAGE,
    Finished,
    GenerationRequest,
    Started,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    Usage,
    UsageSink,
)
from inferplane.providers.base import Provider, register

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig


@register
class LlamaCppProvider(Provider):
    name = "llamacpp"
    tools = False  # the embedded base model has no tool-call format
    features = frozenset({"logprobs", "ignore_eos", CONTINUOUS_USAGE, "response_format"})

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment)
        engine = deployment.engine
        assert engine is not None, "config validation guarantees an engine for llamacpp"
        self.engine_config = engine
        self.model_name = display_name(engine.model)
        self.supervisor = EngineSupervisor(
            deployment.name,
            WorkerSpec(
                model=engine.model, parallel=engine.parallel, context=engine.context,
                batch=engine.batch, threads=engine.threads,
                startup_timeout_s=engine.startup_timeout_s,
                watts_per_core=watts_per_core(deployment.hardware),
            ),
        )

    async def start(self) -> None:
        await self.supervisor.start()

    async def stop(self) -> None:
        await self.supervisor.stop()

    @property
    def ready(self) -> bool:
        return self.supervisor.ready

    async def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "ready": self.ready, "pid": self.supervisor.pid,
            "restarts": self.supervisor.restarts,
        }
        if self.ready:
            with contextlib.suppress(EngineUnavailable, TimeoutError):
                status.update(await self.supervisor.stats())
        return status

    def describe(self) -> str:
        e = self.engine_config
        return f"llama.cpp {self.model_name} ({e.parallel} parallel x {e.context} tokens)"

    async def stream(
        self, request: GenerationRequest, meter: UsageSink
    ) -> AsyncGenerator[StreamEvent, None]:
        def cancelled(event: dict[str, Any]) -> None:
            if event["ev"] == "done":
                meter.finished(_finished(event, self.supervisor.info.get("energy_method")))

        async for event in self.supervisor.generate(self._payload(request), cancelled):
            kind = event["ev"]
            if kind == "delta":
                yield TextDelta(event["text"], event.get("tokens", 0),
                                tuple(map(_logprob, event.get("logprobs") or ())))
            elif kind == "start":
                yield Started(event["prompt_tokens"])
            elif kind == "done":
                yield _finished(event, self.supervisor.info.get("energy_method"))
            elif event.get("code") == "context_length_exceeded":
                raise ContextLengthExceeded(event["message"], param="messages")
            elif event.get("code") == "invalid_response_format":
                raise InvalidRequest(event["message"], param="response_format")
            else:
                raise EngineUnavailable(event.get("message", "engine error"))

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        p = request.params
        payload: dict[str, Any] = {
            "id": request.id, "max_tokens": p.max_tokens, "temperature": p.temperature,
            "top_p": p.top_p, "stop": list(p.stop), "seed": p.seed,
            "logprobs": request.logprobs, "ignore_eos": p.ignore_eos,
            "priority": request.priority,
        }
        if request.response_format is not None:  # JSON: the engine samples with a grammar
            payload["response_format"] = request.response_format
        if request.endpoint == "chat.completions":
            payload["segments"] = TEMPLATES[self.engine_config.chat_template](request.messages)
        else:
            payload["prompt"] = request.prompt
        return payload


def _logprob(entry: dict[str, Any]) -> TokenLogprob:
    return TokenLogprob(entry["token"], entry["logprob"], tuple(entry["bytes"]),
                        tuple(map(_logprob, entry.get("top") or ())))


def _finished(event: dict[str, Any], energy_method: str | None) -> Finished:
    usage = Usage(event["prompt_tokens"], event["completion_tokens"],
                  cached_tokens=event.get("cached_tokens", 0))
    energy = event.get("energy_j")
    return Finished(event["finish_reason"], usage, event["engine_seconds"],
                    event.get("stop_sequence"), energy,
                    energy_method if energy is not None else None, event.get("queue_seconds"))
