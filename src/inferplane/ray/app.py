"""The Serve application: ``inferplane.ray.app:build`` (a RayService's ``import_path``, or
``inferplane ray serve --config FILE``). ``args`` are :class:`EngineAppConfig`'s fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from ray.serve.deployment import Application, Deployment

from inferplane.ray import vllm
from inferplane.ray.board import LoadBoard
from inferplane.ray.replica import Engine
from inferplane.ray.settings import EngineAppConfig, read


def llamacpp_options(settings: EngineAppConfig) -> dict[str, Any]:
    """Serve's options for the engine replicas: autoscaling on ongoing requests, each
    replica's CPUs and GPUs, and how many requests one replica takes before Serve queues them
    (its slots and as many waiting)."""
    return {
        "autoscaling_config": settings.autoscaling.serve_options(),
        "ray_actor_options": {"num_cpus": settings.num_cpus, "num_gpus": settings.num_gpus},
        "max_ongoing_requests": 2 * settings.slots,
        "health_check_period_s": 2.0,
        "graceful_shutdown_timeout_s": 5.0,
    }


def _llamacpp(settings: EngineAppConfig, args: dict[str, Any]) -> Application:
    # the decorated classes are Serve deployments (typed as the classes they wrap)
    board = cast(Deployment, LoadBoard).bind(settings.report_interval_s)
    return cast(Deployment, Engine).options(**llamacpp_options(settings)).bind(args, board)


def _vllm(settings: EngineAppConfig, args: dict[str, Any]) -> Application:
    return vllm.build(settings)


BUILDERS: dict[str, Callable[[EngineAppConfig, dict[str, Any]], Application]] = {
    "llamacpp": _llamacpp, "vllm": _vllm,
}


def build(args: dict[str, Any]) -> Application:
    """The application for ``args`` (validated first: a ConfigError lists the problems)."""
    settings = read(dict(args))
    return BUILDERS[settings.backend](settings, dict(args))
