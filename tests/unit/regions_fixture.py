"""A small, fixed regions catalog, so carbon and water arithmetic is pinned independently of
the packaged data file's figures."""

from __future__ import annotations

from inferplane.metering.carbon import parse_regions

REGIONS = parse_regions({
    "version": "test",
    "defaults": {
        "grid_gco2_per_kwh": {"value": 475.0}, "electricity_water_l_per_kwh": {"value": 3.0},
        "pue": {"value": 1.5}, "wue_l_per_kwh": {"value": 1.0},
    },
    "zones": {
        "WORLD": {"name": "World", "gco2_per_kwh": 475.0},
        "IE": {"name": "Ireland", "gco2_per_kwh": 300.0},
        "SE": {"name": "Sweden", "gco2_per_kwh": 40.0, "electricity_water_l_per_kwh": 0.5},
    },
    "operators": {"aws": {"pue": 1.2, "wue_l_per_kwh": 0.2}},
    "regions": {"eu-west-1": {"zone": "IE", "operator": "aws"}, "eu-north-1": {"zone": "SE"}},
})
