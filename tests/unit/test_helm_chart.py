"""The Helm chart (deploy/helm/inferplane): linted and rendered by Helm's own Go SDK (the
helm-python-sdk wheel; no helm binary, nothing fetched), every rendered manifest validated
against the Kubernetes OpenAPI schemas of the oldest and newest versions the chart supports
(kubernetes-validate ships them), and the gateway's configuration in its ConfigMap loaded by
Inferplane's own loader. The CI values files (``ci/*.yaml``) are the cases: one gateway on
SQLite, three on PostgreSQL and Redis, gateways in front of Ray Serve engines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from inferplane.config import load_config
from inferplane.providers.base import provider_names

helm = pytest.importorskip("helm_python.chart")
HelmRenderError = pytest.importorskip("helm_python.errors").HelmRenderError

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "inferplane"
CASES = sorted(p.name for p in (CHART / "ci").glob("*.yaml"))
KUBERNETES = ["1.27.0", "1.37.0"]  # Chart.yaml's kubeVersion floor, and the newest schemas


def values(case: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "ci" / case).read_text()))


def render(overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The chart's manifests for ``overrides``, by kind."""
    rendered = helm.Chart.load(CHART).render(overrides, name="ip", namespace="inference",
                                             is_install=True)
    out: dict[str, dict[str, Any]] = {}
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            for doc in yaml.safe_load_all(text):
                if doc:
                    assert doc["kind"] not in out, path
                    out[doc["kind"]] = doc
    return out


def pod_templates(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod templates a custom resource carries (KubeRay's head and worker groups)."""
    cluster = manifest["spec"]["rayClusterConfig"]
    yield cluster["headGroupSpec"]["template"]
    for group in cluster["workerGroupSpecs"]:
        yield group["template"]


def validate_definition(data: dict[str, Any], filename: str, version: str) -> None:
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    schema = schema_contents(f"{schema_dir}/{filename}", version)
    definitions = schema_contents(f"{schema_dir}/_definitions.json", version)
    refs = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    jsonschema.validators.Draft202012Validator(schema, registry=refs).validate(data)


@pytest.mark.parametrize("case", CASES)
def test_helm_lint_passes_strict(case: str) -> None:
    report = helm.lint(CHART, values(case), strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize("case", CASES)
def test_every_manifest_fits_the_kubernetes_schemas(case: str, version: str) -> None:
    manifests = render(values(case))
    for manifest in manifests.values():
        if manifest["apiVersion"].startswith(("ray.io/", "monitoring.coreos.com/")):
            continue  # custom resources: their pod templates are checked below
        kubernetes_validate.validate(manifest, version, strict=True)
    if "RayService" in manifests:
        for template in pod_templates(manifests["RayService"]):
            validate_definition(template, "podtemplatespec-v1.json", version)


@pytest.mark.parametrize("case", CASES)
def test_the_configmap_is_a_configuration_inferplane_loads(
        case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = render(values(case))["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for env in container["env"]:  # what the Secrets would hold
        if "valueFrom" in env:
            monkeypatch.setenv(env["name"], {
                "INFERPLANE_STORE_URL": "postgresql://inferplane:pw@postgres/inferplane",
                "INFERPLANE_REDIS_URL": "redis://:pw@redis:6379/0"}.get(env["name"], "x"))
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ENGINES_KEY"):
        monkeypatch.setenv(name, "sk-test")
    path = tmp_path / "inferplane.yaml"
    path.write_text(render(values(case))["ConfigMap"]["data"]["inferplane.yaml"])
    config = load_config(path, known_providers=provider_names())
    assert config.server.host == "0.0.0.0" and config.ledger.dir == "/var/lib/inferplane/wal"
    port = container["ports"][0]["containerPort"]
    assert config.server.port == port
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > config.server.shutdown_grace_s + 5  # preStop, then the drain, then the WAL


def test_the_gateway_pod_is_locked_down() -> None:
    manifests = render(values("cluster.yaml"))
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    gateway = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] and not pod["automountServiceAccountToken"]
    assert gateway["securityContext"]["readOnlyRootFilesystem"]
    assert gateway["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert not {"Role", "RoleBinding", "ClusterRole"} & set(manifests)  # no API access
    assert manifests["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    assert "replicas" not in manifests["Deployment"]["spec"]  # the autoscaler owns it
    assert manifests["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    # secrets reach the pod as references, never as values in a ConfigMap
    config = manifests["ConfigMap"]["data"]["inferplane.yaml"]
    assert "env:INFERPLANE_REDIS_URL" in config and "password" not in config
    env = {e["name"]: e for e in gateway["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "inferplane-postgres"
    monitor = manifests["ServiceMonitor"]["spec"]["endpoints"][0]
    assert monitor["path"] == "/metrics"
    assert monitor["authorization"]["credentials"]["name"] == "inferplane-viewer"


def test_engines_on_ray_serve_get_gpus_and_node_selectors() -> None:
    ray = render(values("engines.yaml"))["RayService"]
    serve = yaml.safe_load(ray["spec"]["serveConfigV2"])["applications"][0]
    scaling = serve["args"]["autoscaling"]
    assert (scaling["min_replicas"], scaling["max_replicas"]) == (1, 8)
    assert scaling["target_ongoing_requests"] == 16
    from inferplane.ray.settings import read

    settings = read(serve["args"])  # what inferplane.ray.app:build validates
    assert settings.deployment == "chat-ray" and settings.backend == "vllm"
    assert settings.autoscaling.max_replicas == 8
    [group] = ray["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    pod = group["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


@pytest.mark.parametrize("shared", [{"replicaCount": 3}, {"autoscaling": {"enabled": True}},
                                    {"server": {"workers": 2}}])
def test_several_gateways_without_postgresql_and_redis_do_not_render(
        shared: dict[str, Any]) -> None:
    with pytest.raises(HelmRenderError, match="share one PostgreSQL"):
        render(shared)


def test_a_capacity_plan_becomes_the_engines_replicas_chips_and_nodes(tmp_path: Path) -> None:
    """`inferplane plan --helm-values`: the cheapest option's replicas, chips per replica and
    hardware, rendered by the chart into a RayService that fits the schemas."""
    from typer.testing import CliRunner

    from inferplane.cli.main import app

    out = tmp_path / "engines.yaml"
    result = CliRunner().invoke(app, [
        "plan", "--model", "llama-3.1-70b", "--rate", "20", "--isl", "2000", "--osl", "300",
        "--slo", "ttft=1s,tpot=50ms", "--hardware", "h100", "--json", "--helm-values", str(out)])
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)["options"][0]
    planned = yaml.safe_load(out.read_text())
    ray = render({**values("cluster.yaml"), **planned})["RayService"]
    [group] = ray["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert group["replicas"] == best["replicas"] and group["groupName"] == "h100"
    pod = group["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == \
        best["chips_per_replica"]
    assert pod["nodeSelector"] == {"inferplane.io/accelerator": "h100"}
    serve = yaml.safe_load(ray["spec"]["serveConfigV2"])["applications"][0]
    assert serve["args"]["tensor_parallel_size"] == best["tp"]
    # the arguments are what the Serve application (inferplane.ray.app:build) takes
    from inferplane.ray.settings import read

    settings = read(serve["args"])
    assert serve["import_path"] == "inferplane.ray.app:build"
    assert settings.backend == "vllm" and settings.model == "llama-3.1-70b"
    assert settings.autoscaling.min_replicas == best["replicas"]
    assert settings.autoscaling.max_replicas == 2 * best["replicas"]
    for version in KUBERNETES:
        validate_definition(group["template"], "podtemplatespec-v1.json", version)


def test_hardware_without_a_device_plugin_has_no_values() -> None:
    from inferplane.planner.deploy_values import device_resource
    from inferplane.planner.errors import PlannerError

    with pytest.raises(PlannerError, match="device plugin"):
        device_resource("Groq LPU v1")
