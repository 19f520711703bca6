"""The Serve application's arguments: which engine each replica runs, and how Serve scales them.

The same mapping arrives from ``inferplane ray serve --config FILE`` and from a RayService's
``serveConfigV2`` ``args`` (the Helm chart's ``rayService.config``, which
``inferplane plan --helm-values`` writes: ``planner/deploy_values.py``). Pure.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, ValidationError, model_validator

from inferplane.config.deployments import EngineConfig
from inferplane.config.problems import Section, format_loc, invalid, validation_issues
from inferplane.errors import ConfigError

Backend = Literal["llamacpp", "vllm"]


class ScalingConfig(Section):
    """Serve's autoscaling of the engine replicas on their ongoing requests (queue depth)."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(8, gt=0)
    upscale_delay_s: float = Field(30.0, ge=0)
    downscale_delay_s: float = Field(600.0, ge=0)
    metrics_interval_s: float = Field(10.0, gt=0)  # how often replicas report their queue
    look_back_period_s: float = Field(30.0, gt=0)  # the window their reports are averaged on

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise invalid("replicas_order", "min_replicas is above max_replicas",
                          "make min_replicas <= max_replicas", field="min_replicas")
        return self

    def serve_options(self) -> dict[str, Any]:
        """Serve's ``autoscaling_config``."""
        return self.model_dump()


class EngineAppConfig(Section):
    """One deployment's engine on Ray Serve."""

    deployment: str = Field("engine", min_length=1)  # the gateway's deployment it serves
    model: str = Field("engine", min_length=1)  # the name clients send as `model`
    backend: Backend = "llamacpp"
    # llamacpp: the embedded engine each replica supervises (docs/configuration.md#engine)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    # vllm (through ray.serve.llm): the weights (a hub id or a path; default: `model`) and the
    # layout the capacity planner chose
    model_source: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_num_seqs: int | None = Field(None, ge=1)  # sequences decoded together per replica
    quantization: str | None = None
    # each replica's share of its node
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    autoscaling: ScalingConfig = Field(default_factory=ScalingConfig)
    report_interval_s: float = Field(0.5, gt=0)  # how often a replica posts its load

    @model_validator(mode="after")
    def _engine_layout(self) -> Self:
        chips = self.tensor_parallel_size * self.pipeline_parallel_size
        if self.backend == "llamacpp" and chips > 1:
            raise invalid(
                "llamacpp_parallel",
                "the embedded llama.cpp engine runs a replica on one machine's CPUs: it has no "
                "tensor or pipeline parallelism",
                "use `backend: vllm` for a layout over several chips, or set both sizes to 1",
                field="tensor_parallel_size")
        return self

    @property
    def slots(self) -> int:
        """Sequences one replica decodes together."""
        if self.max_num_seqs is not None:
            return self.max_num_seqs
        return self.engine.parallel

    def engine_settings(self) -> EngineConfig:
        """The embedded engine, its batch as ``max_num_seqs`` says where given."""
        if self.max_num_seqs is None:
            return self.engine
        return self.engine.model_copy(update={"parallel": self.max_num_seqs})


def read(args: dict[str, Any]) -> EngineAppConfig:
    """The application's arguments, validated: a :class:`ConfigError` lists every problem,
    where it is and its fix."""
    try:
        return EngineAppConfig.model_validate(args)
    except ValidationError as exc:
        problems = "; ".join(f"{format_loc(i.loc) or '(top)'}: {i.message} ({i.fix})"
                             for i in validation_issues(exc, EngineAppConfig))
        raise ConfigError(f"the Ray Serve application's arguments: {problems}") from None
