"""The Serve application's arguments (inferplane.ray.settings): what `inferplane ray serve`'s
file and the Helm chart's rayService.config give, validated with every problem named."""

from __future__ import annotations

import pytest

from inferplane.errors import ConfigError
from inferplane.ray.load import ReplicaLoad, fresh, summary
from inferplane.ray.settings import read


def test_defaults_run_the_embedded_engine_on_one_replica() -> None:
    s = read({})
    assert s.backend == "llamacpp" and s.engine.model == "builtin:gemma-3-270m"
    assert (s.autoscaling.min_replicas, s.autoscaling.max_replicas) == (1, 1)
    assert s.slots == s.engine.parallel == 8


def test_max_num_seqs_is_the_engines_batch() -> None:
    s = read({"engine": {"parallel": 4, "threads": 1}, "max_num_seqs": 2})
    assert s.slots == 2 and s.engine_settings().parallel == 2
    assert s.engine_settings().threads == 1


def test_autoscaling_becomes_serves_autoscaling_config() -> None:
    s = read({"autoscaling": {"min_replicas": 1, "max_replicas": 4,
                              "target_ongoing_requests": 2, "upscale_delay_s": 1}})
    options = s.autoscaling.serve_options()
    assert options["max_replicas"] == 4 and options["target_ongoing_requests"] == 2
    assert options["upscale_delay_s"] == 1


@pytest.mark.parametrize(("args", "words"), [
    ({"tensor_parallel_size": 2}, ["tensor_parallel_size", "backend: vllm"]),
    ({"autoscaling": {"min_replicas": 3, "max_replicas": 2}}, ["min_replicas"]),
    ({"backend": "tgi"}, ["backend", "llamacpp", "vllm"]),
    ({"replicas": 2}, ["unknown key 'replicas'"]),
    ({"engine": {"model": "weights.bin"}}, ["engine.model", ".gguf"]),
])
def test_a_mistake_is_named_with_its_fix(args: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as refused:
        read(args)
    for word in words:
        assert word in refused.value.message


def test_a_layout_over_several_chips_is_vllms() -> None:
    s = read({"backend": "vllm", "model": "llama-3.1-70b", "tensor_parallel_size": 4,
              "max_num_seqs": 64, "quantization": "fp8"})
    from inferplane.ray.vllm import engine_kwargs

    assert engine_kwargs(s) == {"tensor_parallel_size": 4, "pipeline_parallel_size": 1,
                                "max_num_seqs": 64, "quantization": "fp8"}


def test_a_replica_that_stopped_reporting_stops_counting() -> None:
    reports = [ReplicaLoad("a", at=10.0, running=2, slots=2),
               ReplicaLoad("b", at=7.0, running=2, slots=2),  # 3 s old at 0.5 s intervals
               ReplicaLoad("c", at=9.5, running=0, slots=2, ready=False)]
    live = fresh(reports, now=10.0, interval_s=0.5)
    assert [r.replica for r in live] == ["a", "c"]
    s = summary(live)
    assert (s["replicas"], s["in_flight"], s["capacity"]) == (1, 2, 2)
    assert [r["replica"] for r in s["per_replica"]] == ["a", "c"]  # the starting one shown


def test_vllm_without_vllm_installed_is_refused_clearly() -> None:
    pytest.importorskip("ray.serve", reason="needs the ray extra")
    from inferplane.ray import vllm

    if vllm.available():
        pytest.skip("vLLM is installed here")
    from inferplane.ray.app import build

    with pytest.raises(ConfigError, match=r"needs vLLM installed"):
        build({"backend": "vllm", "model": "llama-3.1-8b"})
