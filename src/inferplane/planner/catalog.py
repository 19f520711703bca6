"""The hardware and model catalogs (``data/hardware.yaml``, ``data/models.yaml``) as typed data.

Loading is the only I/O here; everything the planner computes takes these frozen dataclasses.

>>> catalog = load_catalog()
>>> catalog.find_hardware("H100").memory_gb
80.0
>>> catalog.find_model("llama-3.1-70b").layers
80
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Protocol, TypeVar

import yaml

from inferplane.planner.errors import PlannerError


@dataclass(frozen=True)
class Link:
    """An interconnect as one chip sees it: bandwidth per direction and latency per hop."""

    kind: str
    gb_s: float
    latency_s: float
    domain: int = 1  # chips reachable at this bandwidth (scale-up); 1 for scale-out links

    @property
    def bytes_per_s(self) -> float:
        return self.gb_s * 1e9


@dataclass(frozen=True)
class Price:
    """One published hourly price of one chip."""

    provider: str
    usd_per_hour: float
    date: str
    source: str


@dataclass(frozen=True)
class Efficiency:
    """Achieved shares of the datasheet peaks, and the fixed cost of a decode step."""

    bandwidth: float
    compute: float
    step_overhead_s: float

    def to_dict(self) -> dict[str, float]:
        return {"bandwidth_efficiency": self.bandwidth, "compute_efficiency": self.compute,
                "step_overhead_s": self.step_overhead_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Efficiency:
        """The inverse of :meth:`to_dict` (extra keys ignored)."""
        return cls(bandwidth=float(data["bandwidth_efficiency"]),
                   compute=float(data["compute_efficiency"]),
                   step_overhead_s=float(data["step_overhead_s"]))


@dataclass(frozen=True)
class PowerModel:
    """Chip power as shares of TDP: idle, plus per unit of bandwidth and compute utilisation."""

    idle: float
    memory: float
    compute: float


@dataclass(frozen=True)
class Hardware:
    """One accelerator (or CPU) with its peaks, links, power and prices."""

    id: str
    name: str
    kind: str
    memory_gb: float
    bandwidth_gb_s: float
    peak_tflops: dict[str, float]
    tdp_w: float | None
    scale_up: Link
    scale_out: Link
    efficiency: Efficiency
    power: PowerModel
    usable_memory_fraction: float
    prices: tuple[Price, ...]
    source: str
    status: str = "available"
    estimated: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    cores: int | None = None  # CPUs: the cores the TDP is shared by (the energy model's)

    @property
    def memory_bytes(self) -> float:
        return self.memory_gb * 1e9

    @property
    def usable_bytes(self) -> float:
        return self.memory_bytes * self.usable_memory_fraction

    @property
    def bandwidth_bytes_s(self) -> float:
        return self.bandwidth_gb_s * 1e9

    def peak_flops(self, key: str) -> float:
        return self.peak_tflops[key] * 1e12

    def price(self, provider: str | None = None) -> Price | None:
        """The price of ``provider`` (substring match), else the median listed price."""
        if not self.prices:
            return None
        if provider is not None:
            wanted = provider.lower()
            for p in self.prices:
                if wanted in p.provider.lower():
                    return p
            return None
        ordered = sorted(self.prices, key=lambda p: p.usd_per_hour)
        return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True)
class SlidingWindow:
    """``local`` sliding-window layers (``size`` tokens), then ``global`` full ones, repeating."""

    size: int
    local: int
    global_: int

    def global_layers(self, layers: int) -> int:
        period = self.local + self.global_
        full, rest = divmod(layers, period)
        return full * self.global_ + max(0, rest - self.local)


@dataclass(frozen=True)
class Mla:
    """Multi-head latent attention ranks (DeepSeek-V2/V3)."""

    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int


@dataclass(frozen=True)
class Moe:
    """Mixture of experts: ``active`` of ``experts`` routed per token, plus shared experts."""

    experts: int
    active: int
    expert_intermediate: int
    shared_experts: int = 0
    dense_layers: int = 0


@dataclass(frozen=True)
class Model:
    """A decoder-only transformer's published shape."""

    id: str
    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    max_context: int
    native_quant: str
    source: str
    native_quant_scope: str = "all"
    mla: Mla | None = None
    moe: Moe | None = None
    sliding_window: SlidingWindow | None = None
    params_b: float | None = None
    active_params_b: float | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """Both catalogs, by id; ``find_*`` also accept aliases and any letter case."""

    hardware: dict[str, Hardware] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    updated: str = ""

    def find_hardware(self, name: str) -> Hardware:
        return _find(self.hardware, name, "hardware")

    def find_model(self, name: str) -> Model:
        return _find(self.models, name, "model")

    def with_efficiency(self, hardware_id: str, efficiency: Efficiency) -> Catalog:
        """A copy whose ``hardware_id`` entry uses ``efficiency`` (e.g. from a calibration)."""
        hw = dict(self.hardware)
        hw[hardware_id] = replace(hw[hardware_id], efficiency=efficiency)
        return replace(self, hardware=hw)


class _Named(Protocol):
    @property
    def aliases(self) -> tuple[str, ...]: ...


N = TypeVar("N", bound=_Named)


def _find(entries: dict[str, N], name: str, what: str) -> N:
    key = name.strip().lower()
    for entry_id, entry in entries.items():
        if key == entry_id or key in entry.aliases:
            return entry
    names = list(entries) + [a for e in entries.values() for a in e.aliases]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(entries)}"
    raise PlannerError(f"unknown {what} {name!r}{hint}")


def _read(name: str) -> Any:
    text = resources.files("inferplane").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _link(raw: dict[str, Any], kinds: dict[str, Any], scale_up: bool) -> Link:
    kind = raw["kind"]
    return Link(kind=kind, gb_s=float(raw["gb_s"]),
                latency_s=float(kinds[kind]["latency_us"]) * 1e-6,
                domain=int(raw.get("domain", 1)) if scale_up else 1)


def _hardware(raw: dict[str, Any], defaults: dict[str, Any], kinds: dict[str, Any]) -> Hardware:
    eff = {**defaults["efficiency"], **raw.get("efficiency", {})}
    power = {**defaults["power"], **raw.get("power", {})}
    return Hardware(
        id=raw["id"], name=raw["name"], kind=raw["kind"],
        memory_gb=float(raw["memory_gb"]), bandwidth_gb_s=float(raw["bandwidth_gb_s"]),
        peak_tflops={k: float(v) for k, v in raw["peak_tflops"].items()},
        tdp_w=float(raw["tdp_w"]) if raw.get("tdp_w") is not None else None,
        scale_up=_link(raw["scale_up"], kinds, scale_up=True),
        scale_out=_link(raw["scale_out"], kinds, scale_up=False),
        efficiency=Efficiency(bandwidth=float(eff["bandwidth"]), compute=float(eff["compute"]),
                              step_overhead_s=float(eff["step_overhead_s"])),
        power=PowerModel(idle=float(power["idle"]), memory=float(power["memory"]),
                         compute=float(power["compute"])),
        usable_memory_fraction=float(
            raw.get("usable_memory_fraction", defaults["usable_memory_fraction"])),
        prices=tuple(
            Price(provider=p["provider"], usd_per_hour=float(p["usd_per_hour"]),
                  date=str(p["date"]), source=p["source"])
            for p in raw.get("prices", [])),
        source=raw["source"], status=raw.get("status", "available"),
        estimated=tuple(raw.get("estimated", [])), uncertain=tuple(raw.get("uncertain", [])),
        aliases=tuple(a.lower() for a in raw.get("aliases", [])),
        cores=int(raw["cores"]) if raw.get("cores") is not None else None,
    )


def _model(raw: dict[str, Any]) -> Model:
    sw, mla, moe = raw.get("sliding_window"), raw.get("mla"), raw.get("moe")
    return Model(
        id=raw["id"], name=raw["name"], layers=int(raw["layers"]), hidden=int(raw["hidden"]),
        intermediate=int(raw["intermediate"]), heads=int(raw["heads"]),
        kv_heads=int(raw["kv_heads"]), head_dim=int(raw["head_dim"]), vocab=int(raw["vocab"]),
        tied_embeddings=bool(raw["tied_embeddings"]), max_context=int(raw["max_context"]),
        native_quant=raw["native_quant"], source=raw["source"],
        native_quant_scope=raw.get("native_quant_scope", "all"),
        mla=Mla(**mla) if mla else None,
        moe=Moe(**moe) if moe else None,
        sliding_window=SlidingWindow(size=int(sw["size"]), local=int(sw["local"]),
                                     global_=int(sw["global"])) if sw else None,
        params_b=raw.get("params_b"), active_params_b=raw.get("active_params_b"),
        aliases=tuple(a.lower() for a in raw.get("aliases", [])),
    )


@functools.cache
def load_catalog() -> Catalog:
    """Both packaged catalogs (read once per process)."""
    hw_raw, models_raw = _read("hardware.yaml"), _read("models.yaml")
    try:
        hardware = {
            h["id"]: _hardware(h, hw_raw["defaults"], hw_raw["link_kinds"])
            for h in hw_raw["hardware"]
        }
        models = {m["id"]: _model(m) for m in models_raw["models"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise PlannerError(f"invalid catalog data: {exc!r}") from exc
    return Catalog(hardware=hardware, models=models, updated=str(hw_raw.get("updated", "")))
