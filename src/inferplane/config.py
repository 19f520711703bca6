"""The one typed configuration object, loaded from ``inferplane.yaml`` and validated.

The file is: an explicit path, else ``$INFERPLANE_CONFIG``, else ``./inferplane.yaml``, else none,
which serves the embedded model as ``default`` (:func:`default_config`). A file that leaves out
both ``models`` and ``deployments`` keeps the default ones. Every problem is reported at once::

    >>> print(parse_config("server: {prot: 80}", "inferplane.yaml")[1][0])  # doctest: +ELLIPSIS
    inferplane.yaml:1:10: server.prot: unknown key 'prot' — fix: remove it (did you mean 'port'?)...

The reference of every key is docs/configuration.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from inferplane.config_accounting import (
    AccountingConfig as AccountingConfig,
    EnergyConfig as EnergyConfig,
    HardwareConfig as HardwareConfig,
    PriceConfig as PriceConfig,
    PriceTierConfig as PriceTierConfig,
)
from inferplane.config_tenancy import (
    RedisConfig as RedisConfig,
    TenancyConfig as TenancyConfig,
)
from inferplane.configfile import (
    Issue,
    Loc,
    Problem as Problem,  # re-exported: callers import it from here
    Section,
    format_loc,
    invalid,
    one_of,
    parse_yaml,
    validation_issues,
    yaml_error_problem,
)
from inferplane.engines.model_files import BUILTIN_MODELS, BUILTIN_PREFIX
from inferplane.errors import ConfigError
from inferplane.providers.base import provider_names

CONFIG_ENV = "INFERPLANE_CONFIG"
DEFAULT_CONFIG_FILE = "inferplane.yaml"

# Providers whose engine Inferplane starts itself: they need ``engine`` and have no ``base_url``.
ENGINE_PROVIDERS = frozenset({"llamacpp"})

_SECRET_REF = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*|file:.+")
_STORE_SCHEMES = ("sqlite://", "postgresql://", "postgresql+", "postgres://")


def expand_path(s: str) -> Path:
    """``~/.inferplane/ledger`` -> ``/home/me/.inferplane/ledger``."""
    return Path(s).expanduser()


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

    dir: str = Field("~/.inferplane/ledger", min_length=1)
    commit_interval_ms: int = Field(250, gt=0)
    commit_batch: int = Field(1000, gt=0)
    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_ms: int = Field(200, gt=0)


class SloConfig(Section):
    """The latency a model's requests should meet; the ``cost`` policy honours it."""

    ttft_s: float | None = Field(None, gt=0, examples=[1.0])  # time to first token
    tpot_s: float | None = Field(None, gt=0, examples=[0.05])  # time per output token


class RetryConfig(Section):
    """Attempts on retryable errors (429, 5xx, timeouts, connection errors), never once a
    streamed response has begun."""

    max_attempts: int = Field(3, ge=1, le=10)  # across all deployments and fallbacks
    per_deployment: int = Field(2, ge=1, le=10)  # attempts on one deployment before the next
    backoff_base_s: float = Field(0.1, ge=0)
    backoff_cap_s: float = Field(2.0, ge=0)
    deadline_s: float = Field(30.0, gt=0)  # no new attempt starts after this


class RoutingConfig(Section):
    """How a model's requests pick a deployment, and which models to fall back to."""

    policy: Literal[
        "cost", "latency", "least-busy", "weighted", "round-robin", "prefix-affinity", "carbon"
    ] = "cost"
    fallbacks: list[str] = Field(default_factory=list, examples=[["chat-large"]])
    slo: SloConfig = Field(default_factory=SloConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    residency: list[str] | None = Field(None, examples=[["eu"]])  # allowed regions/jurisdictions
    max_request_usd: float | None = Field(None, gt=0)  # refuse deployments expected to cost more


class ModelConfig(Section):
    """A name clients ask for."""

    name: str = Field(min_length=1, examples=["chat-small"])
    aliases: list[str] = Field(default_factory=list, examples=[["gpt-4o-mini"]])
    routing: RoutingConfig = Field(default_factory=RoutingConfig)

    @model_validator(mode="after")
    def _no_fallback_to_self(self) -> Self:
        own = {self.name, *self.aliases}
        for i, fallback in enumerate(self.routing.fallbacks):
            if fallback in own:
                raise invalid(
                    "fallback_to_self",
                    f"model '{self.name}' falls back to itself",
                    f"remove '{fallback}' from the fallbacks; list other models",
                    field=f"routing.fallbacks.{i}",
                )
        return self


class EngineConfig(Section):
    """The embedded llama.cpp engine a ``llamacpp`` deployment starts."""

    model: str = Field(f"{BUILTIN_PREFIX}gemma-3-270m", examples=["~/models/my-model.Q4_K_M.gguf"])
    parallel: int = Field(8, ge=1, le=64)  # sequences decoded together in one batch
    context: int = Field(2048, ge=128)  # context window per sequence, in tokens
    batch: int = Field(512, ge=32)  # max tokens in one llama_decode call
    threads: int | None = Field(None, ge=1, examples=[8])  # None: all cores
    chat_template: Literal["gemma"] = "gemma"
    startup_timeout_s: float = Field(120.0, gt=0)

    @field_validator("model")
    @classmethod
    def _builtin_or_gguf(cls, model: str) -> str:
        builtins = [f"{BUILTIN_PREFIX}{name}" for name in BUILTIN_MODELS]
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


class DeploymentConfig(Section):
    """A place where a model runs: an embedded engine or an upstream endpoint."""

    name: str = Field(min_length=1, examples=["openai-mini"])
    model: str = Field(min_length=1, examples=["chat-small"])
    provider: str = Field(examples=["openai"])
    engine: EngineConfig | None = None  # filled with the defaults for an engine provider
    region: str = Field("local", min_length=1)
    jurisdiction: str | None = Field(None, examples=["eu"])  # None: the region's own name
    hardware: HardwareConfig | None = None
    price: PriceConfig | None = None
    vendor: str | None = Field(None, examples=["groq"])  # whose list prices apply (prices.yaml)
    base_url: str | None = Field(None, examples=["https://api.openai.com/v1"])
    api_key: str | None = Field(None, examples=["env:OPENAI_API_KEY"])
    upstream_model: str | None = Field(None, examples=["gpt-4o-mini"])
    api_version: str | None = Field(None, examples=["2024-10-21"])  # Azure OpenAI's api-version
    headers: dict[str, str] = Field(default_factory=dict)  # extra headers for every request
    weight: float = Field(1.0, gt=0)
    rpm: int | None = Field(None, gt=0)  # the upstream's request limit per minute
    tpm: int | None = Field(None, gt=0)  # the upstream's token limit per minute
    max_in_flight: int | None = Field(None, gt=0)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)

    @property
    def area(self) -> str:
        """The jurisdiction residency rules compare against (the region when unset)."""
        return self.jurisdiction or self.region

    @model_validator(mode="before")
    @classmethod
    def _default_engine(cls, data: Any) -> Any:
        engine_provider = isinstance(data, dict) and data.get("provider") in ENGINE_PROVIDERS
        if engine_provider and data.get("engine") is None:
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
        if self.provider not in ENGINE_PROVIDERS and self.engine is not None:
            raise invalid(
                "engine_without_engine_provider",
                f"provider '{self.provider}' does not start an engine, so `engine:` has no effect",
                f"remove `engine:`, or use one of: {', '.join(sorted(ENGINE_PROVIDERS))}",
                field="engine",
            )
        return self


class Config(Section):
    """Everything ``inferplane.yaml`` says, validated; see docs/configuration.md."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    accounting: AccountingConfig = Field(default_factory=AccountingConfig)
    tenancy: TenancyConfig = Field(default_factory=TenancyConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    models: list[ModelConfig]
    deployments: list[DeploymentConfig]

    @model_validator(mode="after")
    def _references(self) -> Self:
        issues = cross_issues(self.models, self.deployments)
        if issues:
            text = "; ".join(f"{format_loc(i.loc)}: {i.message} — fix: {i.fix}" for i in issues)
            raise PydanticCustomError("config_references", "{message}", {"message": text})
        return self

    @staticmethod
    def expand_path(s: str) -> Path:
        """Same as the module's :func:`expand_path`."""
        return expand_path(s)

    def model_names(self) -> list[str]:
        """Every name a client may ask for: each model's name, then its aliases."""
        return [n for m in self.models for n in (m.name, *m.aliases)]

    def resolve_alias(self, name: str) -> ModelConfig | None:
        """The model called ``name`` or aliased ``name``; None when there is none."""
        return next((m for m in self.models if name == m.name or name in m.aliases), None)

    def deployments_of(self, model: str) -> list[DeploymentConfig]:
        """The deployments of the model called (or aliased) ``model``, in file order."""
        found = self.resolve_alias(model)
        return [d for d in self.deployments if found is not None and d.model == found.name]


def cross_issues(
    models: Sequence[ModelConfig | None],
    deployments: Sequence[DeploymentConfig | None],
) -> list[Issue]:
    """Problems between entries: clashing names, dangling references, models never deployed.

    ``None`` stands for an entry that is itself invalid (already reported); checks that would
    need it are skipped rather than reporting a follow-on problem.
    """
    issues: list[Issue] = []
    owner: dict[str, Loc] = {}  # model name or alias -> where it is declared
    alias_of: dict[str, str] = {}
    for i, m in enumerate(models):
        if m is None:
            continue
        named: list[tuple[str, Loc]] = [(m.name, ("models", i, "name"))]
        named += [(a, ("models", i, "aliases", j)) for j, a in enumerate(m.aliases)]
        for name, loc in named:
            if name in owner:
                message = f"'{name}' is already used by {format_loc(owner[name])}"
                fix = "give every model name and alias a different value"
                issues.append(Issue(loc, message, fix))
            else:
                owner[name] = loc
                if name != m.name:
                    alias_of[name] = m.name
    names = sorted(m.name for m in models if m is not None)
    models_known = None not in models
    if models_known:
        for i, m in enumerate(models):
            for j, fallback in enumerate(m.routing.fallbacks if m is not None else []):
                if fallback not in owner:
                    loc = ("models", i, "routing", "fallbacks", j)
                    fix = one_of(fallback, owner)
                    issues.append(Issue(loc, f"unknown model '{fallback}'", fix))
    seen: dict[str, int] = {}
    for i, d in enumerate(deployments):
        if d is None:
            continue
        if d.name in seen:
            message = f"'{d.name}' is already used by deployments[{seen[d.name]}].name"
            fix = "give every deployment a different name"
            issues.append(Issue(("deployments", i, "name"), message, fix))
        seen.setdefault(d.name, i)
        if not models_known or d.model in names:
            continue
        loc = ("deployments", i, "model")
        if d.model in alias_of:
            message = f"'{d.model}' is an alias; a deployment names its model by the model's name"
            issues.append(Issue(loc, message, f"write `model: {alias_of[d.model]}`"))
        else:
            fix = f"declare it under `models:` (`- name: {d.model}`)"
            fix += f", or {one_of(d.model, names)}" if names else ""
            issues.append(Issue(loc, f"unknown model '{d.model}'", fix))
    if None not in deployments:
        deployed = {d.model for d in deployments if d is not None}
        deployed |= {alias_of[name] for name in deployed if name in alias_of}
        for i, m in enumerate(models):
            if m is not None and m.name not in deployed:
                fix = f"add a deployment with `model: {m.name}` under `deployments:`, or remove it"
                issues.append(Issue(("models", i), f"model '{m.name}' has no deployment", fix))
    return issues


def default_config() -> Config:
    """The configuration with no file at all: the embedded Gemma 3 270M served as ``default``."""
    return Config(
        models=[ModelConfig(name="default", aliases=["gemma-3-270m"])],
        deployments=[
            DeploymentConfig(
                name="local-gemma",
                model="default",
                provider="llamacpp",
                engine=EngineConfig(),
                region="local",
                hardware=HardwareConfig(accelerator="cpu", count=1, usd_per_hour=0.10),
            )
        ],
    )


def find_config_file(path: str | Path | None = None) -> Path | None:
    """``path``, else ``$INFERPLANE_CONFIG``, else ``./inferplane.yaml`` if it exists, else None."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def parse_config(
    text: str, file: str = "<string>", *, known_providers: Collection[str] | None = None
) -> tuple[Config | None, list[Problem]]:
    """Validate YAML text: the config and no problems, or None and every problem found."""
    try:
        doc = parse_yaml(text)
    except yaml.YAMLError as exc:
        return None, [yaml_error_problem(exc, file)]
    issues = doc.duplicate_keys()
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        fix = "start the file with top-level keys: server, store, ledger, models, deployments"
        return None, [doc.problem(file, Issue((), "the file must be a mapping of sections", fix))]
    data = {k: v for k, v in data.items() if v is not None}  # `server:` alone means the defaults
    if "models" not in data and "deployments" not in data:
        default = default_config()
        data.update(models=default.models, deployments=default.deployments)
    else:  # the missing one is reported as "has no deployment" / "unknown model" with its fix
        data.setdefault("models", [])
        data.setdefault("deployments", [])
    # The names a file may use: every installed adapter, unless the caller says otherwise.
    known = provider_names() if known_providers is None else known_providers
    context = {"known_providers": known}
    config = None
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as exc:
        issues += validation_issues(exc, Config, skip={"config_references"})
        # Checks between entries run on every entry whose names can be read, valid or not.
        models = _model_skeletons(data["models"])
        deployments = _deployment_skeletons(data["deployments"])
        issues += cross_issues(models, deployments)
    problems = sorted(
        (doc.problem(file, issue) for issue in issues),
        key=lambda p: (p.line is None, p.line or 0, p.column or 0),
    )
    return (None, problems) if problems else (config, [])


def _model_skeletons(raw: Any) -> list[ModelConfig | None]:
    """The names in each ``models`` entry, even one invalid elsewhere (None: names unreadable)."""
    if not isinstance(raw, list):
        return [None]  # the list itself is wrong: skip the checks that need its entries
    out: list[ModelConfig | None] = []
    for item in raw:
        entry: dict[str, Any] = item if isinstance(item, dict) else {}
        routing = entry.get("routing")
        name, aliases = entry.get("name"), entry.get("aliases") or []
        fallbacks = (routing.get("fallbacks") if isinstance(routing, dict) else None) or []
        if isinstance(item, ModelConfig):
            out.append(item)
        elif isinstance(name, str) and name and _names(aliases) and _names(fallbacks):
            skeleton = RoutingConfig.model_construct(fallbacks=fallbacks)
            out.append(ModelConfig.model_construct(name=name, aliases=aliases, routing=skeleton))
        else:
            out.append(None)
    return out


def _deployment_skeletons(raw: Any) -> list[DeploymentConfig | None]:
    """The name and model of each ``deployments`` entry, as :func:`_model_skeletons`."""
    if not isinstance(raw, list):
        return [None]
    out: list[DeploymentConfig | None] = []
    for item in raw:
        entry: dict[str, Any] = item if isinstance(item, dict) else {}
        name, model = entry.get("name"), entry.get("model")
        if isinstance(item, DeploymentConfig):
            out.append(item)
        elif isinstance(name, str) and name and isinstance(model, str) and model:
            out.append(DeploymentConfig.model_construct(name=name, model=model, provider=""))
        else:
            out.append(None)
    return out


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def check_config(
    path: str | Path, *, known_providers: Collection[str] | None = None
) -> list[Problem]:
    """Every problem in the configuration file at ``path`` (empty when it is valid)."""
    return _read(Path(path), known_providers)[1]


def load_config(
    path: str | Path | None = None, *, known_providers: Collection[str] | None = None
) -> Config:
    """The configuration (see :func:`find_config_file`); raises ConfigError with every problem."""
    file = find_config_file(path)
    if file is None:
        return default_config()
    config, problems = _read(file, known_providers)
    if config is None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise ConfigError(f"{file}: invalid configuration ({count})", [str(p) for p in problems])
    return config


def _read(
    path: Path, known_providers: Collection[str] | None
) -> tuple[Config | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fix = "check the path, or leave the file out to serve the built-in default model"
        return None, [Problem(str(path), None, None, "(file)", "no such file", fix)]
    except (OSError, UnicodeDecodeError) as exc:
        fix = "pass a readable UTF-8 text file"
        return None, [Problem(str(path), None, None, "(file)", f"cannot read: {exc}", fix)]
    return parse_config(text, str(path), known_providers=known_providers)
