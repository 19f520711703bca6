"""The ``deployments`` entries: where a model runs (an embedded engine, an engine server
Inferplane starts, or an upstream endpoint), with its engine, timeouts and circuit breaker
settings; and which providers start an engine of their own (:data:`ENGINE_PROVIDERS`)."""

from __future__ import annotations

import re
from typing import Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from inferplane.config.accounting import EnergyConfig, HardwareConfig, PriceConfig
from inferplane.config.problems import Section, invalid, one_of
from inferplane.engines.model_files import BUILTIN_MODELS, BUILTIN_PREFIX

# Providers whose engine Inferplane starts itself: they need ``engine`` and have no ``base_url``.
ENGINE_PROVIDERS = frozenset({"llamacpp", "managed"})
# The engines: the embedded one (provider ``llamacpp``) and the servers Inferplane starts as
# processes of their own (provider ``managed``, docs/engines.md).
EngineKind = Literal["embedded", "llama-server", "vllm", "sglang"]
MANAGED_KINDS: tuple[EngineKind, ...] = ("llama-server", "vllm", "sglang")
GGUF_KINDS: tuple[EngineKind, ...] = ("embedded", "llama-server")  # they load a .gguf file

_SECRET_REF = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*|file:.+")


class EngineConfig(Section):
    """The engine a deployment starts: the embedded llama.cpp engine (``kind: embedded``,
    provider ``llamacpp``) or an engine server in a process of its own (``kind: llama-server |
    vllm | sglang``, provider ``managed``). The settings after ``startup_timeout_s`` apply to
    the servers only."""

    kind: EngineKind = "embedded"
    # a built-in model or a .gguf file (embedded, llama-server); a model name or directory
    # (vllm, sglang)
    model: str = Field(f"{BUILTIN_PREFIX}gemma-3-270m", examples=["~/models/my-model.Q4_K_M.gguf"])
    parallel: int = Field(8, ge=1, le=1024)  # sequences decoded together in one batch
    context: int = Field(2048, ge=128)  # context window per sequence, in tokens
    batch: int = Field(512, ge=32)  # max tokens in one llama_decode call
    threads: int | None = Field(None, ge=1, examples=[8])  # None: all cores
    chat_template: Literal["gemma"] = "gemma"
    startup_timeout_s: float = Field(120.0, gt=0)
    port: int | None = Field(None, ge=1, le=65535)  # None: a free loopback port at each start
    tensor_parallel: int = Field(1, ge=1, le=64)  # GPUs one replica is split over
    quantization: str | None = Field(None, examples=["fp8", "awq"])  # vllm, sglang
    gpu_memory_share: float | None = Field(None, gt=0, le=1)  # vllm, sglang
    draft_model: str | None = None  # speculative decoding with this draft model
    draft_tokens: int = Field(4, ge=1, le=64)  # tokens the draft proposes per step
    command: list[str] | None = Field(None, min_length=1)  # the program, else the kind's own
    args: list[str] = Field(default_factory=list)  # more arguments, appended as given
    log_file: str | None = None  # None: <cache dir>/engines/<deployment>.log
    # the GPUs whose NVML energy counters it is measured by; None: the first tensor_parallel
    # GPUs for vllm and sglang, none for llama-server
    gpus: list[int] | None = None
    metrics_interval_s: float = Field(1.0, gt=0)  # how often its metrics are read
    # the planner catalog's name for its model: its observed step times calibrate the planner
    planner_model: str | None = Field(None, examples=["llama-3.1-8b"])
    stop_timeout_s: float = Field(15.0, gt=0)  # SIGTERM, then SIGKILL after this

    @field_validator("parallel")
    @classmethod
    def _embedded_parallel(cls, parallel: int, info: ValidationInfo) -> int:
        if info.data.get("kind", "embedded") == "embedded" and parallel > 64:
            raise invalid("engine_parallel", "the embedded engine decodes at most 64 sequences",
                          "write `parallel: 64` or less")
        return parallel

    @field_validator("model")
    @classmethod
    def _builtin_or_gguf(cls, model: str, info: ValidationInfo) -> str:
        builtins = [f"{BUILTIN_PREFIX}{name}" for name in BUILTIN_MODELS]
        if info.data.get("kind", "embedded") not in GGUF_KINDS:
            if model.startswith(BUILTIN_PREFIX):
                raise invalid("engine_model",
                              f"built-in models are GGUF files, which {info.data['kind']} "
                              "does not load", "name a model or a model directory")
            return model
        if model.startswith(BUILTIN_PREFIX) and model not in builtins:
            message = f"unknown built-in model '{model}'"
            raise invalid("engine_model", message, one_of(model, builtins))
        if not model.startswith(BUILTIN_PREFIX) and not model.endswith(".gguf"):
            raise invalid(
                "engine_model",
                f"engine model '{model}' is neither built-in nor a .gguf file",
                f"write `model: {builtins[0]}` or a path to a .gguf file",
            )
        return model


class EngineMetricsConfig(Section):
    """An engine server Inferplane does not start (``provider: openai``) whose own load metrics
    it reads for routing, as it does a managed engine's (docs/engines.md)."""

    kind: Literal["llama-server", "vllm", "sglang"]
    url: str = Field(examples=["http://10.0.0.5:8000"])  # the server's root, not .../v1
    interval_s: float = Field(1.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise invalid("engine_metrics_url", "engine_metrics.url must be an http(s):// URL",
                          "write e.g. `url: http://10.0.0.5:8000`")
        return url.rstrip("/")


class TimeoutsConfig(Section):
    """How long an upstream may take, in seconds."""

    connect_s: float = Field(5.0, gt=0)
    first_token_s: float = Field(60.0, gt=0)  # from sending the request to its first event
    idle_s: float = Field(60.0, gt=0)  # the longest gap between two stream events
    total_s: float = Field(600.0, gt=0)


class BreakerConfig(Section):
    """The circuit breaker each deployment has: it opens when, among the last ``window``
    outcomes no older than ``window_s``, at least ``min_requests`` and an ``error_threshold``
    share of them failed; it stays open for ``cooldown_s`` (times ``cooldown_factor`` after each
    failed probe, up to ``max_cooldown_s``), then lets ``half_open_probes`` through."""

    window: int = Field(20, ge=1)
    window_s: float | None = Field(60.0, gt=0)
    min_requests: int = Field(5, ge=1)
    error_threshold: float = Field(0.5, gt=0, le=1)
    cooldown_s: float = Field(5.0, gt=0)
    cooldown_factor: float = Field(2.0, ge=1)
    max_cooldown_s: float = Field(120.0, gt=0)
    half_open_probes: int = Field(1, ge=1)


class DeploymentBatchConfig(Section):
    """The share of a deployment batch lines may use (docs/api.md#batches): at most
    ``max_concurrency`` lines at once (None: the engine's ``parallel`` for an embedded engine,
    else 4); on a hosted upstream one fewer for every interactive request in flight."""

    max_concurrency: int | None = Field(None, ge=0, examples=[8])


class DeploymentConfig(Section):
    """A place where a model runs: an embedded engine or an upstream endpoint."""

    name: str = Field(min_length=1, examples=["openai-mini"])
    model: str = Field(min_length=1, examples=["chat-small"])
    # the model version it serves (docs/governance.md); None: the deployment's name
    version: str | None = Field(None, min_length=1, max_length=128, examples=["llama-3.1-8b-v2"])
    provider: str = Field(examples=["openai"])
    engine: EngineConfig | None = None  # filled with the defaults for an engine provider
    engine_metrics: EngineMetricsConfig | None = None  # an unmanaged engine's load metrics
    region: str = Field("local", min_length=1)
    jurisdiction: str | None = Field(None, examples=["eu"])  # None: the region's own name
    hardware: HardwareConfig | None = None
    price: PriceConfig | None = None
    vendor: str | None = Field(None, examples=["groq"])  # whose list prices apply (prices.yaml)
    base_url: str | None = Field(None, examples=["https://api.openai.com/v1"])
    api_key: str | None = Field(None, examples=["env:OPENAI_API_KEY"])
    upstream_model: str | None = Field(None, examples=["gpt-4o-mini"])
    api_version: str | None = Field(None, examples=["2024-10-21"])  # Azure OpenAI's api-version
    # the API an `openai` deployment's upstream is spoken to in: chat completions, or the
    # Responses API (providers/openai_responses.py)
    api: Literal["chat", "responses"] = "chat"
    headers: dict[str, str] = Field(default_factory=dict)  # extra headers for every request
    weight: float = Field(1.0, gt=0)
    rpm: int | None = Field(None, gt=0)  # the upstream's request limit per minute
    tpm: int | None = Field(None, gt=0)  # the upstream's token limit per minute
    max_in_flight: int | None = Field(None, gt=0)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    batch: DeploymentBatchConfig = Field(default_factory=DeploymentBatchConfig)

    @property
    def version_name(self) -> str:
        """The version this deployment serves: ``version``, else its own name."""
        return self.version or self.name

    @property
    def area(self) -> str:
        """The jurisdiction residency rules compare against (the region when unset)."""
        return self.jurisdiction or self.region

    @model_validator(mode="before")
    @classmethod
    def _default_engine(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        engine = data.get("engine")
        kind = engine.get("kind") if isinstance(engine, dict) else getattr(engine, "kind", None)
        if "provider" not in data and kind in MANAGED_KINDS:  # `engine: {kind: vllm}` says it
            data = {**data, "provider": "managed"}
        if data.get("provider") == "llamacpp" and engine is None:
            return {**data, "engine": EngineConfig()}
        return data

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, provider: str, info: ValidationInfo) -> str:
        # Only a file is checked against the known names (the loader passes them as context);
        # code that builds a DeploymentConfig itself may name any provider.
        known = (info.context or {}).get("known_providers")
        if known is not None and provider not in known:
            message = f"unknown provider '{provider}'"
            raise invalid("unknown_provider", message, one_of(provider, known))
        return provider

    @field_validator("api_key")
    @classmethod
    def _secret_reference(cls, api_key: str | None) -> str | None:
        if api_key is not None and not _SECRET_REF.fullmatch(api_key):
            # Never echo the value: it may be the secret itself.
            raise invalid(
                "literal_secret",
                "api_key must name an environment variable or a file, not hold the key itself",
                "export the key (e.g. OPENAI_API_KEY=...) and write `api_key: env:OPENAI_API_KEY`"
                ", or `api_key: file:/run/secrets/openai`",
            )
        return api_key

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, base_url: str | None) -> str | None:
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise invalid(
                "base_url",
                "base_url must be an http:// or https:// URL",
                "write e.g. `base_url: https://api.openai.com/v1`",
            )
        return base_url

    @model_validator(mode="after")
    def _engine_matches_provider(self) -> Self:
        if self.provider in ENGINE_PROVIDERS and self.base_url is not None:
            raise invalid(
                "engine_base_url",
                f"provider '{self.provider}' runs an embedded engine and takes no base_url",
                "remove `base_url:`, or use `provider: openai` for an OpenAI-compatible server",
                field="base_url",
            )
        if self.provider == "managed" and (self.engine is None
                                           or self.engine.kind not in MANAGED_KINDS):
            raise invalid(
                "managed_engine_kind",
                "provider 'managed' starts an engine server: say which one",
                f"write `engine: {{kind: llama-server}}` (or one of: {', '.join(MANAGED_KINDS)})",
                field="engine",
            )
        if self.provider == "llamacpp" and self.engine is not None \
                and self.engine.kind != "embedded":
            raise invalid(
                "embedded_engine_kind",
                f"provider 'llamacpp' runs the embedded engine, not {self.engine.kind}",
                "remove `provider:` (the engine's kind implies `managed`), or `kind:`",
                field="engine",
            )
        if self.provider in ENGINE_PROVIDERS and self.engine_metrics is not None:
            raise invalid(
                "engine_metrics_managed",
                "a deployment whose engine Inferplane starts has its metrics read already",
                "remove `engine_metrics:`", field="engine_metrics",
            )
        if self.provider not in ENGINE_PROVIDERS and self.engine is not None:
            raise invalid(
                "engine_without_engine_provider",
                f"provider '{self.provider}' does not start an engine, so `engine:` has no effect",
                f"remove `engine:`, or use one of: {', '.join(sorted(ENGINE_PROVIDERS))}",
                field="engine",
            )
        if self.api == "responses" and (self.provider != "openai" or self.api_version):
            raise invalid(
                "api_responses",
                "`api: responses` is for an `openai` deployment without `api_version`",
                "remove `api:`, or use `provider: openai` with a base_url that serves "
                "/responses", field="api")
        return self
