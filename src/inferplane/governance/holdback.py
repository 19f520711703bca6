"""Which deployments governance holds back, from one snapshot of the registry: the router's
hard constraint reads the result (one dictionary lookup per candidate), never the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from inferplane.config import DeploymentConfig
from inferplane.governance.canary import Split
from inferplane.governance.kills import Kill, stopping
from inferplane.governance.stages import Stage, serves


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The registry as one gateway process last read it."""

    stages: Mapping[str, Stage] = field(default_factory=dict)  # version -> its stage
    kills: tuple[Kill, ...] = ()
    revision: int = -1
    percents: Mapping[str, float] = field(default_factory=dict)  # version -> rollout percent
    rollbacks: Mapping[str, int] = field(default_factory=dict)  # model -> version moves made


def held_back(deployments: Sequence[DeploymentConfig], snapshot: Snapshot, *,
              require_approval: bool) -> dict[str, str]:
    """Deployment name -> why it may not receive requests, for each one held back.

    A kill wins over a stage (it is the more urgent news). A version not in the snapshot yet
    counts as registered. A model with a version in production serves from those only.

    >>> from inferplane.config import DeploymentConfig as D
    >>> ds = [D(name="a", model="m", provider="p"), D(name="b", model="m", provider="p")]
    >>> held_back(ds, Snapshot({"a": Stage.PRODUCTION}), require_approval=False)
    {'b': 'version b is not in production (another version is)'}
    >>> held_back(ds, Snapshot(), require_approval=True)["a"]
    'version a is not approved'
    """
    def stage(d: DeploymentConfig) -> Stage:
        return snapshot.stages.get(d.version_name, Stage.REGISTERED)

    in_production = {d.model for d in deployments if stage(d) is Stage.PRODUCTION}
    out = killed(deployments, snapshot)
    for d in deployments:
        if d.name in out:
            continue
        why = serves(stage(d), require_approval=require_approval,
                     model_has_production=d.model in in_production)
        if why is not None:
            out[d.name] = f"version {d.version_name} is {why}"
    return out


def killed(deployments: Sequence[DeploymentConfig], snapshot: Snapshot) -> dict[str, str]:
    """Deployment name -> the kill that stops it, for each one a kill stops: what holds back
    even a request pinned to its version (an evaluation)."""
    out: dict[str, str] = {}
    for d in deployments:
        kill = stopping(snapshot.kills, d.name, d.model, d.provider)
        if kill is not None:
            out[d.name] = kill.describe()
    return out
def candidates(deployments: Sequence[DeploymentConfig], snapshot: Snapshot, stage: Stage
               ) -> dict[str, Split]:
    """Model -> its version in ``stage`` (shadow or canary) with its percent and deployments.
    A shadow's killed deployments are left out (nothing is mirrored to them); a canary's stay,
    and its held-back map turns them away.

    >>> from inferplane.config import DeploymentConfig as D
    >>> ds = [D(name="a", model="m", provider="p"), D(name="b", model="m", provider="p")]
    >>> candidates(ds, Snapshot({"a": Stage.PRODUCTION, "b": Stage.CANARY}, percents={"b": 20}),
    ...            Stage.CANARY)
    {'m': Split(version='b', percent=20.0, deployments=frozenset({'b'}))}
    """
    found: dict[str, tuple[str, set[str]]] = {}
    for d in deployments:
        if snapshot.stages.get(d.version_name) is not stage:
            continue
        if stage is Stage.SHADOW and stopping(snapshot.kills, d.name, d.model, d.provider):
            continue
        found.setdefault(d.model, (d.version_name, set()))[1].add(d.name)
    return {model: Split(version, float(snapshot.percents.get(version, 0.0)), frozenset(names))
            for model, (version, names) in found.items()}
