"""vLLM on Ray Serve through ``ray.serve.llm``, where vLLM is installed: its own
OpenAI-compatible app (``/v1/chat/completions``, ``/v1/completions``) with the planner's layout
as engine arguments and the same autoscaling. It reports its load in vLLM's own metrics, not
``/load``."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from inferplane.errors import ConfigError
from inferplane.ray.settings import EngineAppConfig

if TYPE_CHECKING:
    from ray.serve.deployment import Application


def available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def engine_kwargs(settings: EngineAppConfig) -> dict[str, Any]:
    """vLLM's engine arguments from the application's layout. Pure.

    >>> from inferplane.ray.settings import EngineAppConfig
    >>> engine_kwargs(EngineAppConfig(backend="vllm", tensor_parallel_size=2, max_num_seqs=64))
    {'tensor_parallel_size': 2, 'pipeline_parallel_size': 1, 'max_num_seqs': 64}
    """
    kwargs: dict[str, Any] = {"tensor_parallel_size": settings.tensor_parallel_size,
                              "pipeline_parallel_size": settings.pipeline_parallel_size}
    if settings.max_num_seqs is not None:
        kwargs["max_num_seqs"] = settings.max_num_seqs
    if settings.quantization not in (None, "fp16", "bf16"):
        kwargs["quantization"] = settings.quantization
    return kwargs


def build(settings: EngineAppConfig) -> Application:
    if not available():
        raise ConfigError("backend vllm needs vLLM installed beside Ray "
                          "(pip install 'ray[serve,llm]'); it is not")
    from ray.serve.llm import LLMConfig, build_openai_app

    config = LLMConfig(
        model_loading_config={"model_id": settings.model,
                              "model_source": settings.model_source or settings.model},
        deployment_config={"autoscaling_config": settings.autoscaling.serve_options()},
        engine_kwargs=engine_kwargs(settings),
    )
    return build_openai_app({"llm_configs": [config]})
