"""Deploy the application on a running Ray cluster: what ``inferplane ray serve`` runs, in a
process of its own that loads Ray before anything else. (Ray's core library and usearch's,
which the gateway's semantic cache loads, disagree on the C++ runtime: Ray aborts in its
first call when usearch was loaded first.)

``python -m inferplane.ray.deploy CONFIG ADDRESS NAME ROUTE_PREFIX HOST PORT``
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import ray  # before inferplane: see above
import ray.serve
import yaml

from inferplane.errors import ConfigError
from inferplane.ray.app import build


def deploy(config: Path, address: str, name: str, route_prefix: str, host: str,
           port: int) -> str:
    """Deploy and wait for the replicas; the URL of the app's routes."""
    try:
        args = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {config}: {exc}") from exc
    if not isinstance(args, dict):
        raise ConfigError(f"{config} must hold a mapping of the application's arguments")
    application = build(args)
    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    ray.serve.start(http_options={"host": host, "port": port})
    ray.serve.run(application, name=name, route_prefix=route_prefix)
    return f"http://{host}:{port}{route_prefix.rstrip('/')}"


def main(argv: list[str]) -> int:
    config, address, name, route_prefix, host, port = argv
    try:
        url = deploy(Path(config), address, name, route_prefix, host, int(port))
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    print(f"application {name} is running: {url}/v1 (load: {url}/load)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
