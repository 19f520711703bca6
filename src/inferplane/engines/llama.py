"""A thin, typed shell over llama.cpp's C API (through llama-cpp-python's ctypes bindings).

Only what the worker needs: load a model with a multi-sequence context, tokenize, decode one
batch that mixes several sequences, sample per sequence, free a sequence's KV cells.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

import llama_cpp as lc
import numpy as np

from inferplane.engines.sampling import Greedy, Temperature, numpy_sampler
from inferplane.engines.scheduler import Work

_LOG_WARN = 3
_LOG_ERROR = 4


@lc.llama_log_callback  # type: ignore[untyped-decorator]
def _log(level: int, text: bytes, _user: Any) -> None:
    if level in (_LOG_WARN, _LOG_ERROR):
        sys.stderr.write(text.decode("utf-8", "replace"))


class LlamaError(RuntimeError):
    """llama.cpp refused to load a model or decode a batch."""


class LlamaModel:
    """One model and one context holding ``n_seq`` independent sequences."""

    def __init__(
        self, path: str, *, n_seq: int, n_ctx_seq: int, n_batch: int, n_threads: int | None
    ) -> None:
        lc.llama_log_set(_log, ctypes.c_void_p(0))
        lc.llama_backend_init()
        mparams = lc.llama_model_default_params()
        self._model = lc.llama_model_load_from_file(path.encode(), mparams)
        if not self._model:
            raise LlamaError(f"llama.cpp could not load {path}")
        self._vocab = lc.llama_model_get_vocab(self._model)
        threads = n_threads or os.cpu_count() or 1
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = n_ctx_seq * n_seq
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = False
        # Keep the whole sliding-window cache (Gemma 3's local layers), so a slot's cache can be
        # cut back to a shared prefix and reused instead of being decoded again.
        cparams.swa_full = True
        cparams.no_perf = True
        self._ctx = lc.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise LlamaError("llama.cpp could not create a context")
        self._mem = lc.llama_get_memory(self._ctx)
        self._batch = lc.llama_batch_init(n_batch, 0, 1)
        self.n_batch = n_batch
        self.n_ctx_seq = int(lc.llama_n_ctx_seq(self._ctx))
        self.n_ctx_train = int(lc.llama_model_n_ctx_train(self._model))
        self._bos = int(lc.llama_vocab_bos(self._vocab))
        self.n_vocab = int(lc.llama_vocab_n_tokens(self._vocab))
        self._piece_buf = ctypes.create_string_buffer(256)

    # -- text <-> tokens -------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 8
        buf = (lc.llama_token * size)()
        n = lc.llama_tokenize(self._vocab, data, len(data), buf, size, add_bos, special)
        if n < 0:
            size = -n
            buf = (lc.llama_token * size)()
            n = lc.llama_tokenize(self._vocab, data, len(data), buf, size, add_bos, special)
        return list(buf[:n])

    def tokenize_segments(self, segments: Sequence[tuple[str, bool]]) -> list[int]:
        """BOS, then each ``(text, special)`` segment tokenized on its own."""
        tokens = [self._bos]
        for text, special in segments:
            tokens += self.tokenize(text, add_bos=False, special=special)
        return tokens

    def piece(self, token: int) -> bytes:
        n = lc.llama_token_to_piece(self._vocab, token, self._piece_buf, 256, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
            return buf.raw[:n]
        return self._piece_buf.raw[:n]

    def is_eog(self, token: int) -> bool:
        return bool(lc.llama_vocab_is_eog(self._vocab, token))

    # -- decoding ----------------------------------------------------------------------------

    def decode(self, work: Sequence[Work]) -> list[int]:
        """Decode one batch; returns, per work item, the batch index of its logits (or -1)."""
        batch = self._batch
        i = 0
        outputs: list[int] = []
        for item in work:
            slot = item.seq.slot
            for offset, token in enumerate(item.tokens):
                batch.token[i] = token
                batch.pos[i] = item.pos + offset
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = slot
                batch.logits[i] = 0
                i += 1
            if item.wants_logits:
                batch.logits[i - 1] = 1
            outputs.append(i - 1 if item.wants_logits else -1)
        batch.n_tokens = i
        status = lc.llama_decode(self._ctx, batch)
        if status != 0:
            raise LlamaError(f"llama_decode failed with status {status}")
        return outputs

    def clear(self, slot: int) -> None:
        """Free every KV cell of the sequence in ``slot``."""
        lc.llama_memory_seq_rm(self._mem, slot, -1, -1)

    def trim(self, slot: int, keep: int) -> bool:
        """Keep the first ``keep`` positions of ``slot``'s cache; False if llama.cpp cannot."""
        return bool(lc.llama_memory_seq_rm(self._mem, slot, keep, -1))

    # -- sampling ----------------------------------------------------------------------------

    def new_sampler(self, *, temperature: float, top_p: float, seed: int | None,
                    grammar: str | None = None) -> Any:
        """A sampler: greedy and plain temperature sampling in numpy (``sampling.py``, the
        same distribution, several times faster over a large vocabulary), else llama.cpp's
        chain; with ``grammar`` (GBNF), only tokens the grammar allows next are candidates,
        so the text always parses."""
        fast = numpy_sampler(temperature, top_p, seed, grammar)
        if fast is not None:
            return fast
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if grammar is not None:
            constraint = lc.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
            if not constraint:
                lc.llama_sampler_free(chain)
                raise LlamaError("llama.cpp could not compile the grammar")
            lc.llama_sampler_chain_add(chain, constraint)
        if temperature <= 0.0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
            return chain
        if top_p < 1.0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(temperature))
        dist_seed = lc.LLAMA_DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(dist_seed))
        return chain

    def sample(self, sampler: Any, index: int) -> int:
        if isinstance(sampler, Greedy | Temperature):
            return sampler(self._logits(index))
        return int(lc.llama_sampler_sample(sampler, self._ctx, index))

    def _logits(self, index: int) -> Any:
        """The logits at batch ``index``, as a numpy view (valid until the next decode)."""
        return np.ctypeslib.as_array(lc.llama_get_logits_ith(self._ctx, index),
                                     shape=(self.n_vocab,))

    def logprobs(self, index: int, token: int, top: int) -> tuple[float, list[tuple[int, float]]]:
        """The log probability of ``token`` under the model's distribution at batch index
        ``index`` (the raw logits' log-softmax: before temperature and top-p), and the ``top``
        likeliest tokens there with theirs, likeliest first. Call before the next decode."""
        logits = self._logits(index)
        peak = float(logits.max())
        log_total = peak + math.log(float(np.exp(logits - peak).sum()))
        best: list[tuple[int, float]] = []
        if top > 0:
            picked = np.argpartition(logits, -top)[-top:]
            ranked = sorted(picked.tolist(), key=lambda t: -float(logits[t]))
            best = [(t, float(logits[t]) - log_total) for t in ranked]
        return float(logits[token]) - log_total, best

    @staticmethod
    def free_sampler(sampler: Any) -> None:
        if not isinstance(sampler, Greedy | Temperature):
            lc.llama_sampler_free(sampler)

    def close(self) -> None:
        lc.llama_batch_free(self._batch)
        lc.llama_free(self._ctx)
        lc.llama_model_free(self._model)
