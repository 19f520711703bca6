"""The root of the configuration, :class:`Config` (every section of ``inferplane.yaml``), the
checks between its entries (:func:`cross_issues`) and the configuration with no file at all
(:func:`default_config`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from inferplane.config.accounting import AccountingConfig, HardwareConfig
from inferplane.config.audit import AuditConfig
from inferplane.config.batch import BatchConfig
from inferplane.config.deployments import BreakerConfig, DeploymentConfig, EngineConfig
from inferplane.config.drift import DriftConfig
from inferplane.config.governance import GovernanceConfig
from inferplane.config.models import ModelConfig
from inferplane.config.observe import ObserveConfig
from inferplane.config.problems import Issue, Loc, Section, format_loc, invalid, one_of
from inferplane.config.responses import ResponsesConfig
from inferplane.config.server import LedgerConfig, ServerConfig, StoreConfig
from inferplane.config.systems import SystemConfig
from inferplane.config.tenancy import RedisConfig, TenancyConfig


class Config(Section):
    """Everything ``inferplane.yaml`` says, validated; see docs/configuration.md."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    accounting: AccountingConfig = Field(default_factory=AccountingConfig)
    tenancy: TenancyConfig = Field(default_factory=TenancyConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    observe: ObserveConfig = Field(default_factory=ObserveConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    models: list[ModelConfig]
    deployments: list[DeploymentConfig]
    systems: list[SystemConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Self:
        issues = cross_issues(self.models, self.deployments)
        if issues:
            text = "; ".join(f"{format_loc(i.loc)}: {i.message} — fix: {i.fix}" for i in issues)
            raise PydanticCustomError("config_references", "{message}", {"message": text})
        return self

    @model_validator(mode="after")
    def _cache_needs_redis(self) -> Self:
        for i, m in enumerate(self.models):
            if m.cache is not None and m.cache.backend == "redis" and self.redis.url is None:
                raise invalid("cache_needs_redis",
                              f"model '{m.name}' keeps its cache in Redis, but no Redis is set",
                              "set `redis: {url: redis://...}`, or `backend: memory`",
                              field=f"models.{i}.cache.backend")
        return self

    @model_validator(mode="after")
    def _systems_name_models(self) -> Self:
        names = [m.name for m in self.models]
        seen: set[str] = set()
        for i, system in enumerate(self.systems):
            if system.name in seen:
                raise invalid("system_name", f"system '{system.name}' is declared twice",
                              "give every system a different name", field=f"systems.{i}.name")
            seen.add(system.name)
            for j, model in enumerate(system.models):
                if model not in names:
                    raise invalid("system_model", f"unknown model '{model}'",
                                  one_of(model, names), field=f"systems.{i}.models.{j}")
        return self

    def system(self, name: str) -> SystemConfig | None:
        """The system called ``name``; None when there is none."""
        return next((s for s in self.systems if s.name == name), None)

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
    *, aliases_known: bool = True,
) -> list[Issue]:
    """Problems between entries: clashing names, dangling references, models never deployed.

    ``None`` stands for an entry whose names cannot be read (already reported); checks that
    would need it are skipped rather than reporting a follow-on problem. ``aliases_known``:
    False when some model's aliases could not be read, which skips only the checks a missing
    alias could mislead (a fallback may name an alias; a deployment must name a model).
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
    if models_known and aliases_known:
        for i, m in enumerate(models):
            for j, fallback in enumerate(m.routing.fallbacks if m is not None else []):
                if fallback not in owner:
                    loc = ("models", i, "routing", "fallbacks", j)
                    fix = one_of(fallback, owner)
                    issues.append(Issue(loc, f"unknown model '{fallback}'", fix))
            cache = m.cache if m is not None else None
            for field in ("embeddings", "judge"):
                used: str | None = None if cache is None else getattr(cache.semantic, field)
                if used is not None and used not in owner:
                    loc = ("models", i, "cache", "semantic", field)
                    issues.append(Issue(loc, f"unknown model '{used}'", one_of(used, owner)))
    seen: dict[str, int] = {}
    for i, d in enumerate(deployments):
        if d is None:
            continue
        if d.name in seen:
            message = f"'{d.name}' is already used by deployments[{seen[d.name]}].name"
            fix = "give every deployment a different name"
            issues.append(Issue(("deployments", i, "name"), message, fix))
        if d.name:  # empty: unreadable, and reported
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
    version_of: dict[str, str] = {}  # version -> the model it is a version of
    for i, d in enumerate(deployments):
        if d is None or seen.get(d.name) != i:  # a clashing name is reported already
            continue
        version = getattr(d, "version", None) or d.name
        if version_of.setdefault(version, d.model) != d.model:
            message = (f"version '{version}' is already a version of model "
                       f"'{version_of[version]}'; a version belongs to one model")
            fix = "give each model's versions names of their own (e.g. prefix the model's name)"
            issues.append(Issue(("deployments", i, "version"), message, fix))
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
