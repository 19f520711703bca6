"""The packaged list prices of hosted models (``data/prices.yaml``), by vendor and model id.

A deployment's vendor is its ``vendor:`` when set, else the vendor whose API host its
``base_url`` names, else the vendor behind its provider's default endpoint. Its model is its
``upstream_model`` (else its model name); a dated snapshot id finds its undated entry by the
longest catalog id that prefixes it (``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import yaml

from inferplane.metering.prices import Price, Rates, Tier

#: the vendor a provider's default endpoint belongs to, when its deployment has no base_url
PROVIDER_VENDORS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    vendor: str
    model: str
    price: Price
    active_params_b: float | None = None
    total_params_b: float | None = None


@dataclass(frozen=True)
class PriceCatalog:
    version: str
    entries: dict[tuple[str, str], CatalogEntry]
    hosts: dict[str, str]  # API host -> vendor

    def vendor_of(self, provider: str, base_url: str | None, vendor: str | None = None
                  ) -> str | None:
        """Who bills a deployment (see the module's docstring).

        >>> c = PriceCatalog("v", {}, {"api.groq.com": "groq"})
        >>> c.vendor_of("openai", "https://api.groq.com/openai/v1"), c.vendor_of("openai", None)
        ('groq', 'openai')
        >>> c.vendor_of("openai", "http://127.0.0.1:9000/v1") is None
        True
        """
        if vendor is not None:
            return vendor
        if base_url is None:
            return PROVIDER_VENDORS.get(provider)
        return self.hosts.get((urlsplit(base_url).hostname or "").lower())

    def find(self, vendor: str, model: str) -> CatalogEntry | None:
        """The entry for ``model`` at ``vendor``: exact id, else the longest id prefixing it."""
        exact = self.entries.get((vendor, model))
        if exact is not None:
            return exact
        prefixes = [m for (v, m) in self.entries if v == vendor and model.startswith(m)]
        return self.entries[(vendor, max(prefixes, key=len))] if prefixes else None


def _rates(raw: dict[str, Any], base: Rates | None = None) -> Rates:
    def rate(key: str) -> float | None:
        value = raw.get(key, getattr(base, key) if base is not None else None)
        return None if value is None else float(value)

    input_, output = rate("input"), rate("output")
    if input_ is None or output is None:
        raise ValueError(f"price entry without input/output rates: {raw!r}")
    return Rates(input_, output, rate("cached_input"), rate("cache_write"), rate("reasoning"))


def price_from(raw: dict[str, Any], origin: str, source: str = "", as_of: str = "",
               batch_factor: float | None = None, batch_source: str = "") -> Price:
    """A :class:`Price` from a mapping with ``input``, ``output``, optional ``cached_input``,
    ``cache_write``, ``reasoning`` and ``tiers`` (each ``above_input_tokens`` plus rates)."""
    base = _rates(raw)
    tiers = tuple(sorted(
        (Tier(int(t["above_input_tokens"]), _rates(t, base)) for t in raw.get("tiers") or ()),
        key=lambda t: t.above_input_tokens))
    return Price(base, tiers, origin, source, as_of, batch_factor, batch_source)


def parse_catalog(data: dict[str, Any]) -> PriceCatalog:
    entries: dict[tuple[str, str], CatalogEntry] = {}
    hosts: dict[str, str] = {}
    for vendor, spec in data["vendors"].items():
        for host in spec.get("hosts", ()):
            hosts[str(host).lower()] = vendor
        for m in spec["models"]:
            source = str(m.get("source", spec.get("source", "")))
            as_of = str(m.get("as_of", spec.get("as_of", "")))
            params = m.get("active_params_b"), m.get("total_params_b")
            factor = m.get("batch_factor", spec.get("batch_factor"))
            price = price_from(m, "catalog", source, as_of,
                               None if factor is None else float(factor),
                               str(m.get("batch_source", spec.get("batch_source", ""))))
            entries[(vendor, m["model"])] = CatalogEntry(
                vendor, m["model"], price,
                *(None if p is None else float(p) for p in params))
    return PriceCatalog(str(data.get("version", "")), entries, hosts)


@functools.cache
def load_price_catalog() -> PriceCatalog:
    """The packaged catalog (read once per process)."""
    text = resources.files("inferplane").joinpath("data", "prices.yaml").read_text("utf-8")
    return parse_catalog(yaml.safe_load(text))
