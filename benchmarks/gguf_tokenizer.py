"""A Hugging Face tokenizer directory built from a GGUF file's own tokenizer, with no hub.

External load clients (guidellm) need a tokenizer they can load by path to size prompts and
count output tokens. The GGUF the gateway serves holds its tokenizer: the vocabulary, the
scores, the token types and the special tokens, read here with ``gguf`` (llama.cpp's reader)
and written as ``tokenizer.json`` + ``tokenizer_config.json``.

Gemma 3's vocabulary is SentencePiece BPE (``tokenizer.ggml.model`` = ``llama``): llama.cpp
merges the adjacent pair whose result has the highest score, falls back to ``<0xXX>`` byte
tokens and splits user-defined tokens out first. The ``tokenizers`` equivalent is a BPE model
whose merges are ranked by the score of what they produce, with byte fallback, spaces
normalised to ``▁``, user-defined tokens as (non-special) added tokens and control tokens as
special ones. Other GGUF tokenizer models (``gpt2`` byte-level BPE) are refused by name.

Runs in the guidellm venv (``gguf``, ``tokenizers``), not the project's::

    benchmarks/.venvs/guidellm/bin/python benchmarks/gguf_tokenizer.py build MODEL.gguf DIR
    benchmarks/.venvs/guidellm/bin/python benchmarks/gguf_tokenizer.py encode DIR < texts.json
    benchmarks/.venvs/guidellm/bin/python benchmarks/gguf_tokenizer.py sample N  # Faker texts
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# llama.cpp's token types (gguf.TokenType): what each vocabulary entry is.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"  # SentencePiece's "▁"


def read_vocab(model: Path) -> dict[str, Any]:
    """The tokenizer fields of a GGUF file, as plain Python values."""
    from gguf import GGUFReader  # the guidellm venv's; the project venv has no gguf

    reader = GGUFReader(model)

    def value(key: str, default: Any = None) -> Any:
        f = reader.fields.get(key)
        return default if f is None else f.contents()

    kind = value("tokenizer.ggml.model")
    if kind != "llama":
        raise SystemExit(f"{model}: tokenizer.ggml.model is {kind!r}; only SentencePiece "
                         "('llama') vocabularies are converted")
    return {
        "tokens": list(value("tokenizer.ggml.tokens")),
        "scores": [float(s) for s in value("tokenizer.ggml.scores")],
        "types": [int(t) for t in value("tokenizer.ggml.token_type")],
        "bos": value("tokenizer.ggml.bos_token_id"),
        "eos": value("tokenizer.ggml.eos_token_id"),
        "unk": value("tokenizer.ggml.unknown_token_id"),
        "pad": value("tokenizer.ggml.padding_token_id"),
        "add_bos": bool(value("tokenizer.ggml.add_bos_token", True)),
        "add_eos": bool(value("tokenizer.ggml.add_eos_token", False)),
        "add_space_prefix": bool(value("tokenizer.ggml.add_space_prefix", False)),
        "chat_template": value("tokenizer.chat_template"),
        "context_length": value("gemma3.context_length"),
    }


def merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """Every split of a normal token into two vocabulary pieces, ranked as llama.cpp's SPM
    tokenizer applies them: by the score of the merged token, highest first (ties: lower id)."""
    ids = {t: i for i, t in enumerate(tokens) if types[i] == NORMAL}
    ranked: list[tuple[float, int, int, str, str]] = []
    for token, i in ids.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ids and right in ids:
                ranked.append((-scores[i], i, ids[left], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build(model: Path, out: Path) -> None:
    """Write ``out/tokenizer.json`` and ``out/tokenizer_config.json`` for ``model``."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE

    v = read_vocab(model)
    tokens: list[str] = v["tokens"]
    types: list[int] = v["types"]
    vocab = {t: i for i, t in enumerate(tokens)}
    unk = tokens[v["unk"]] if v["unk"] is not None else None
    tok = Tokenizer(BPE(vocab=vocab, merges=merges(tokens, v["scores"], types), unk_token=unk,
                        byte_fallback=True, fuse_unk=True, ignore_merges=False))
    steps: list[normalizers.Normalizer] = [normalizers.Replace(" ", SPACE)]
    if v["add_space_prefix"]:
        steps.insert(0, normalizers.Prepend(SPACE))
    tok.normalizer = normalizers.Sequence(steps)
    tok.decoder = decoders.Sequence([decoders.Replace(SPACE, " "), decoders.ByteFallback(),
                                     decoders.Fuse()]
                                    + ([decoders.Strip(" ", 1, 0)]
                                       if v["add_space_prefix"] else []))
    # llama.cpp splits user-defined tokens out of any text; control tokens only when asked to.
    tok.add_tokens([AddedToken(t, normalized=False, special=False)
                    for t, k in zip(tokens, types, strict=True) if k == USER_DEFINED])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t, k in zip(tokens, types, strict=True)
                            if k in (CONTROL, UNKNOWN)])
    specials = {name: tokens[v[name]] for name in ("bos", "eos", "unk", "pad")
                if v[name] is not None}
    single, pair = ["$A"], ["$A", "$B"]
    if v["add_bos"]:
        single, pair = [specials["bos"], *single], [specials["bos"], "$A", specials["bos"], "$B"]
    if v["add_eos"]:
        single, pair = [*single, specials["eos"]], [*pair, specials["eos"]]
    used = sorted({s for s in single + pair if not s.startswith("$")})
    tok.post_processor = processors.TemplateProcessing(
        single=" ".join(single), pair=" ".join(pair),
        special_tokens=[(s, vocab[s]) for s in used])
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{f"{name}_token": t for name, t in specials.items()},
        "add_bos_token": v["add_bos"], "add_eos_token": v["add_eos"],
        "model_max_length": int(v["context_length"] or 32768),
        "clean_up_tokenization_spaces": False,
        "source_gguf": model.name,
    }
    if v["chat_template"]:
        config["chat_template"] = v["chat_template"]
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {out}: {len(tokens)} tokens, "
          f"{sum(k == USER_DEFINED for k in types)} user-defined, "
          f"{sum(k == CONTROL for k in types)} control", file=sys.stderr)


def encode(directory: Path) -> None:
    """Read a JSON list of texts on stdin; print their token ids (no BOS) as a JSON list."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    texts = json.load(sys.stdin)
    print(json.dumps([tok.encode(t, add_special_tokens=False).ids for t in texts]))


SAMPLE_LOCALES = ("en_US", "fr_FR", "de_DE", "ru_RU", "el_GR", "ar_AA", "ja_JP", "zh_CN")


def sample(n: int, seed: int = 42) -> None:
    """Print ``n`` texts per locale as a JSON list, made the way guidellm's synthetic data
    makes prompts (``Faker.text``; English) and in other scripts, for comparing tokenizers."""
    from faker import Faker

    texts = []
    for locale in SAMPLE_LOCALES:
        faker = Faker(locale)
        faker.seed_instance(seed)
        texts += [faker.text(max_nb_chars=200 + 40 * (i % 20)) for i in range(n)]
    print(json.dumps(texts))


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "build":
        build(Path(argv[1]), Path(argv[2]))
    elif len(argv) == 2 and argv[0] == "encode":
        encode(Path(argv[1]))
    elif len(argv) == 2 and argv[0] == "sample":
        sample(int(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
