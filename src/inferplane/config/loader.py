"""The file loader: which file is read, and from its YAML text to a :class:`Config` or every
problem in it, each with its line and a fix.

The file is: an explicit path, else ``$INFERPLANE_CONFIG``, else ``./inferplane.yaml``, else none,
which serves the embedded model as ``default`` (:func:`default_config`). A file that leaves out
both ``models`` and ``deployments`` keeps the default ones. Every problem is reported at once::

    >>> text, known = "server: {prot: 80}", {"llamacpp", "openai"}
    >>> problems = parse_config(text, "inferplane.yaml", known_providers=known)[1]
    >>> print(problems[0])  # doctest: +ELLIPSIS
    inferplane.yaml:1:10: server.prot: unknown key 'prot' — fix: remove it (did you mean 'port'?)...

A deployment's ``provider`` is checked against ``known_providers``, which the caller hands in
(the CLI passes every installed adapter, ``inferplane.providers.base.provider_names()``): the
configuration does not import the providers. The reference of every key is
docs/configuration.md.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inferplane.config.deployments import DeploymentConfig
from inferplane.config.models import (
    CacheConfig,
    ModelConfig,
    RoutingConfig,
    SemanticCacheConfig,
)
from inferplane.config.problems import (
    Issue,
    Problem,
    parse_yaml,
    validation_issues,
    yaml_error_problem,
)
from inferplane.config.root import Config, cross_issues, default_config
from inferplane.errors import ConfigError

CONFIG_ENV = "INFERPLANE_CONFIG"
DEFAULT_CONFIG_FILE = "inferplane.yaml"


def find_config_file(path: str | Path | None = None) -> Path | None:
    """``path``, else ``$INFERPLANE_CONFIG``, else ``./inferplane.yaml`` if it exists, else None."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def parse_config(
    text: str, file: str = "<string>", *, known_providers: Collection[str]
) -> tuple[Config | None, list[Problem]]:
    """Validate YAML text: the config and no problems, or None and every problem found.

    Each deployment's ``provider`` must be one of ``known_providers``.
    """
    try:
        doc = parse_yaml(text)
    except yaml.YAMLError as exc:
        return None, [yaml_error_problem(exc, file)]
    issues = doc.duplicate_keys()
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        fix = "start the file with top-level keys: server, store, ledger, models, deployments"
        return None, [doc.problem(file, Issue((), "the file must be a mapping of sections", fix))]
    data = {k: v for k, v in data.items() if v is not None}  # `server:` alone means the defaults
    if "models" not in data and "deployments" not in data:
        default = default_config()
        data.update(models=default.models, deployments=default.deployments)
    else:  # the missing one is reported as "has no deployment" / "unknown model" with its fix
        data.setdefault("models", [])
        data.setdefault("deployments", [])
    context = {"known_providers": known_providers}
    config = None
    try:
        config = Config.model_validate(data, context=context)
    except ValidationError as exc:
        issues += validation_issues(exc, Config, skip={"config_references"})
        # Checks between entries run on every entry whose names can be read, valid or not.
        models, aliases_known = _model_skeletons(data["models"])
        deployments = _deployment_skeletons(data["deployments"])
        issues += cross_issues(models, deployments, aliases_known=aliases_known)
    problems = sorted(
        (doc.problem(file, issue) for issue in issues),
        key=lambda p: (p.line is None, p.line or 0, p.column or 0),
    )
    return (None, problems) if problems else (config, [])


def _model_skeletons(raw: Any) -> tuple[list[ModelConfig | None], bool]:
    """The names in each ``models`` entry, even one invalid elsewhere (None: its name is
    unreadable), and whether every alias could be read. An entry whose aliases or fallbacks
    are unreadable (a type error, reported on its own) keeps its name and the rest: the checks
    that need only names (a deployment's model) still run."""
    if not isinstance(raw, list):
        return [None], False  # the list itself is wrong: skip the checks that need its entries
    out: list[ModelConfig | None] = []
    aliases_known = True
    for item in raw:
        if isinstance(item, ModelConfig):
            out.append(item)
            continue
        entry: dict[str, Any] = item if isinstance(item, dict) else {}
        routing = entry.get("routing")
        name, aliases = entry.get("name"), entry.get("aliases") or []
        fallbacks = (routing.get("fallbacks") if isinstance(routing, dict) else None) or []
        if not (isinstance(name, str) and name):
            out.append(None)
            continue
        aliases_known &= _names(aliases)
        skeleton = RoutingConfig.model_construct(fallbacks=_readable(fallbacks))
        out.append(ModelConfig.model_construct(name=name, aliases=_readable(aliases),
                                               routing=skeleton, cache=_cache_skeleton(entry)))
    return out, aliases_known


def _cache_skeleton(entry: dict[str, Any]) -> CacheConfig | None:
    """The model names a ``models`` entry's cache refers to (its semantic cache's embeddings
    model), where they can be read."""
    cache = entry.get("cache")
    semantic = cache.get("semantic") if isinstance(cache, dict) else None
    embeddings = semantic.get("embeddings") if isinstance(semantic, dict) else None
    if not (isinstance(embeddings, str) and embeddings):
        return None
    return CacheConfig.model_construct(
        semantic=SemanticCacheConfig.model_construct(embeddings=embeddings))


def _deployment_skeletons(raw: Any) -> list[DeploymentConfig | None]:
    """The name and model of each ``deployments`` entry, as :func:`_model_skeletons` (None: its
    model is unreadable; an unreadable name is left empty, and its checks skipped)."""
    if not isinstance(raw, list):
        return [None]
    out: list[DeploymentConfig | None] = []
    for item in raw:
        entry: dict[str, Any] = item if isinstance(item, dict) else {}
        name, model = entry.get("name"), entry.get("model")
        if isinstance(item, DeploymentConfig):
            out.append(item)
        elif isinstance(model, str) and model:
            out.append(DeploymentConfig.model_construct(
                name=name if isinstance(name, str) else "", model=model, provider=""))
        else:
            out.append(None)
    return out


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _readable(value: Any) -> list[str]:
    """The names that can be read in a list of names (none from a value of another type)."""
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def check_config(path: str | Path, *, known_providers: Collection[str]) -> list[Problem]:
    """Every problem in the configuration file at ``path`` (empty when it is valid)."""
    return _read(Path(path), known_providers)[1]


def load_config(path: str | Path | None = None, *, known_providers: Collection[str]) -> Config:
    """The configuration (see :func:`find_config_file`); raises ConfigError with every problem."""
    file = find_config_file(path)
    if file is None:
        return default_config()
    config, problems = _read(file, known_providers)
    if config is None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise ConfigError(f"{file}: invalid configuration ({count})", [str(p) for p in problems])
    return config


def _read(path: Path, known_providers: Collection[str]) -> tuple[Config | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fix = "check the path, or leave the file out to serve the built-in default model"
        return None, [Problem(str(path), None, None, "(file)", "no such file", fix)]
    except (OSError, UnicodeDecodeError) as exc:
        fix = "pass a readable UTF-8 text file"
        return None, [Problem(str(path), None, None, "(file)", f"cannot read: {exc}", fix)]
    return parse_config(text, str(path), known_providers=known_providers)
