"""What an engine server is started with: the command line its configuration implies.

One pure builder per engine kind, in :data:`BUILDERS`; a builder reads a resolved
:class:`Launch` (the model's path already found, the port already chosen) and returns the
arguments after the program. The program itself is :mod:`engines.programs`' business.

The settings map to each server's own flags:

============== ======================== ============================ ==========================
setting        llama-server             vllm                         sglang
============== ======================== ============================ ==========================
parallel       ``--parallel``           ``--max-num-seqs``           ``--max-running-requests``
context        ``--ctx-size`` (x slots) ``--max-model-len``          ``--context-length``
batch          ``--batch-size``         ``--max-num-batched-tokens`` ``--chunked-prefill-size``
threads        ``--threads(-batch)``    (GPU)                        (GPU)
tensor_par.    (one process)            ``--tensor-parallel-size``   ``--tp-size``
quantization   (in the GGUF)            ``--quantization``           ``--quantization``
gpu mem share  (all layers on CPU)      ``--gpu-memory-utilization`` ``--mem-fraction-static``
draft_model    ``--model-draft``        ``--speculative-config``     ``--speculative-draft-...``
============== ======================== ============================ ==========================

llama-server also gets the deployment's ``chat_template`` (``--no-jinja --chat-template gemma``:
the built-in GGUF has no template of its own, and llama-server would fall back on ChatML); a
model with its own template is served with it by ``args: [--jinja]`` or another
``--chat-template`` in ``args``, which come last and win.

llama-server's ``--ctx-size`` is the KV cache of all its slots together, so it gets
``context x parallel`` with a KV cache per slot (``--no-kv-unified``), as the embedded engine
has: each sequence gets ``context`` tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson


@dataclass(frozen=True, slots=True)
class Launch:
    """A managed engine's settings, resolved for one start."""

    kind: str
    model: str  # a file's path (llama-server) or a model name or directory
    served_name: str  # the model name its OpenAI API answers to
    host: str
    port: int
    parallel: int
    context: int
    batch: int
    threads: int | None = None
    tensor_parallel: int = 1
    quantization: str | None = None
    gpu_memory_share: float | None = None
    draft_model: str | None = None
    draft_tokens: int = 4
    chat_template: str | None = None  # llama.cpp's built-in template of that name
    extra: tuple[str, ...] = field(default_factory=tuple)


def llama_server_args(launch: Launch) -> list[str]:
    """
    >>> llama_server_args(Launch("llama-server", "/m.gguf", "m", "127.0.0.1", 8080, 4, 512,
    ...                          256, threads=2))  # doctest: +NORMALIZE_WHITESPACE
    ['--model', '/m.gguf', '--alias', 'm', '--host', '127.0.0.1', '--port', '8080',
     '--parallel', '4', '--ctx-size', '2048', '--no-kv-unified', '--batch-size', '256',
     '--metrics', '--slots', '--no-webui', '--threads', '2', '--threads-batch', '2']
    """
    args = ["--model", launch.model, "--alias", launch.served_name,
            "--host", launch.host, "--port", str(launch.port),
            "--parallel", str(launch.parallel),
            "--ctx-size", str(launch.context * launch.parallel), "--no-kv-unified",
            "--batch-size", str(launch.batch), "--metrics", "--slots", "--no-webui"]
    if launch.threads is not None:
        args += ["--threads", str(launch.threads), "--threads-batch", str(launch.threads)]
    if launch.draft_model is not None:
        args += ["--model-draft", launch.draft_model, "--draft-max", str(launch.draft_tokens)]
    if launch.chat_template is not None:  # a built-in name is Jinja source unless --no-jinja
        args += ["--no-jinja", "--chat-template", launch.chat_template]
    return [*args, *launch.extra]


def vllm_args(launch: Launch) -> list[str]:
    """
    >>> vllm_args(Launch("vllm", "Qwen/Qwen2.5-0.5B", "qwen", "127.0.0.1", 8000, 64, 4096, 2048,
    ...                  tensor_parallel=2, gpu_memory_share=0.5, draft_model="d", draft_tokens=3)
    ... )  # doctest: +NORMALIZE_WHITESPACE
    ['--model', 'Qwen/Qwen2.5-0.5B', '--served-model-name', 'qwen', '--host', '127.0.0.1',
     '--port', '8000', '--max-num-seqs', '64', '--max-model-len', '4096',
     '--max-num-batched-tokens', '4096', '--tensor-parallel-size', '2',
     '--gpu-memory-utilization', '0.5',
     '--speculative-config', '{"model":"d","num_speculative_tokens":3}']
    """
    args = ["--model", launch.model, "--served-model-name", launch.served_name,
            "--host", launch.host, "--port", str(launch.port),
            "--max-num-seqs", str(launch.parallel), "--max-model-len", str(launch.context),
            # vLLM refuses a token budget below the longest sequence
            "--max-num-batched-tokens", str(max(launch.batch, launch.context)),
            "--tensor-parallel-size", str(launch.tensor_parallel)]
    if launch.quantization is not None:
        args += ["--quantization", launch.quantization]
    if launch.gpu_memory_share is not None:
        args += ["--gpu-memory-utilization", f"{launch.gpu_memory_share:g}"]
    if launch.draft_model is not None:
        spec = {"model": launch.draft_model, "num_speculative_tokens": launch.draft_tokens}
        args += ["--speculative-config", orjson.dumps(spec).decode()]
    return [*args, *launch.extra]


def sglang_args(launch: Launch) -> list[str]:
    """
    >>> sglang_args(Launch("sglang", "m", "m", "127.0.0.1", 30000, 32, 2048, 512,
    ...                    quantization="fp8"))  # doctest: +NORMALIZE_WHITESPACE
    ['--model-path', 'm', '--served-model-name', 'm', '--host', '127.0.0.1', '--port', '30000',
     '--max-running-requests', '32', '--context-length', '2048', '--chunked-prefill-size',
     '512', '--tp-size', '1', '--enable-metrics', '--quantization', 'fp8']
    """
    args = ["--model-path", launch.model, "--served-model-name", launch.served_name,
            "--host", launch.host, "--port", str(launch.port),
            "--max-running-requests", str(launch.parallel),
            "--context-length", str(launch.context), "--chunked-prefill-size", str(launch.batch),
            "--tp-size", str(launch.tensor_parallel), "--enable-metrics"]
    if launch.quantization is not None:
        args += ["--quantization", launch.quantization]
    if launch.gpu_memory_share is not None:
        args += ["--mem-fraction-static", f"{launch.gpu_memory_share:g}"]
    if launch.draft_model is not None:
        args += ["--speculative-algorithm", "STANDALONE",
                 "--speculative-draft-model-path", launch.draft_model,
                 "--speculative-num-draft-tokens", str(launch.draft_tokens)]
    return [*args, *launch.extra]


Builder = Callable[[Launch], list[str]]
BUILDERS: Mapping[str, Builder] = MappingProxyType({
    "llama-server": llama_server_args,
    "vllm": vllm_args,
    "sglang": sglang_args,
})


def arguments(launch: Launch) -> list[str]:
    """The command-line arguments ``launch`` implies for its kind."""
    return BUILDERS[launch.kind](launch)
