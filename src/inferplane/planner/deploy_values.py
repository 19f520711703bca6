"""A plan turned into the Helm chart's values for its engines (``rayService`` in
deploy/helm/inferplane): one Ray worker group of the plan's hardware, as many replicas as the
plan needs at its rate, each with the plan's chips as Kubernetes extended resources, pinned to
nodes of that hardware, and Serve autoscaling around the plan's concurrency per replica. Pure."""

from __future__ import annotations

import math
from typing import Any

from inferplane.planner.errors import PlannerError
from inferplane.planner.plan import Option

#: The label the chart's engines select nodes by; operators label their nodes with the
#: catalog's hardware id (``kubectl label node N inferplane.io/accelerator=h100``) or pass the
#: label their GPU discovery already sets.
NODE_LABEL = "inferplane.io/accelerator"
#: The extended resource each vendor's Kubernetes device plugin advertises, by the start of the
#: catalog's name.
DEVICE_RESOURCES = {
    "NVIDIA": "nvidia.com/gpu",
    "AMD Instinct": "amd.com/gpu",
    "Google TPU": "google.com/tpu",
    "AWS": "aws.amazon.com/neuron",
    "Intel Gaudi": "habana.ai/gaudi",
}
BURST = 2  # the most replicas autoscaling may add: this many times the plan's count
HOST_HEADROOM_GIB = 16


def device_resource(hardware_name: str) -> str:
    """The extended resource of a chip, by its catalog name.

    >>> device_resource("NVIDIA H100 SXM 80GB"), device_resource("AMD Instinct MI300X")
    ('nvidia.com/gpu', 'amd.com/gpu')
    """
    for prefix, resource in DEVICE_RESOURCES.items():
        if hardware_name.startswith(prefix):
            return resource
    raise PlannerError(f"{hardware_name} has no Kubernetes device plugin resource this "
                       f"chart knows ({', '.join(sorted(set(DEVICE_RESOURCES.values())))})")


def rayservice_values(option: Option, node_label: str = NODE_LABEL) -> dict[str, Any]:
    """The chart values that run ``option`` (a plan's layout and replica count)."""
    hw, replica = option.hardware, option.replica
    resource = device_resource(hw.name)
    chips = {resource: replica.chips}
    # host memory: the weights pass through it while they load, plus the engine's own
    memory = f"{math.ceil(replica.weights.total / 2**30) + HOST_HEADROOM_GIB}Gi"
    return {"rayService": {
        "enabled": True,
        # the Serve application's arguments (inferplane.ray.settings.EngineAppConfig): vLLM
        # through ray.serve.llm, its weights named by the catalog id (point `model_source` at
        # the weights' hub id or path)
        "config": {"backend": "vllm", "model": replica.model.id,
                   "tensor_parallel_size": replica.tp, "pipeline_parallel_size": replica.pp,
                   "max_num_seqs": option.batch_limit, "quantization": replica.quant.name},
        "autoscaling": {"minReplicas": option.replicas,
                        "maxReplicas": BURST * option.replicas,
                        "targetOngoingRequests": max(1, math.ceil(option.load.concurrency))},
        "workers": [{
            "groupName": hw.id,
            "replicas": option.replicas,
            "minReplicas": option.replicas,
            "maxReplicas": BURST * option.replicas,
            "resources": {"requests": {**chips, "memory": memory},
                          "limits": {**chips, "memory": memory}},
            "nodeSelector": {node_label: hw.id},
            "tolerations": [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}],
        }],
    }}
