"""Reading a ``.safetensors`` file into numpy arrays, without the safetensors package.

The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, then the bytes. Tensors are memory-mapped, so loading costs no copy until
a tensor is used.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from inferplane.errors import ConfigError

DTYPES: dict[str, type[np.generic]] = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
}


def read_tensors(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    """Every tensor in ``path`` by name (read-only views of a memory map)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if raw.size < 8:
        raise ConfigError(f"{path} is not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", raw[:8].tobytes())
    try:
        header = json.loads(raw[8 : 8 + header_len].tobytes())
    except ValueError as exc:
        raise ConfigError(f"{path} is not a safetensors file: {exc}") from exc
    base = 8 + header_len
    tensors: dict[str, npt.NDArray[np.generic]] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(meta["dtype"])
        if dtype is None:
            raise ConfigError(f"{path}: tensor {name} has unsupported dtype {meta['dtype']}")
        start, end = meta["data_offsets"]
        tensors[name] = raw[base + start : base + end].view(dtype).reshape(meta["shape"])
    return tensors
