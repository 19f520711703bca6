"""The embedded engine's process: a continuous-batching decode loop over llama.cpp.

Run by the supervisor as ``python -m inferplane.engines.worker --fd N ...``. It talks to the
gateway over one socket, a JSON object per line:

gateway -> worker  ``{"op": "generate", "id", "segments" | "prompt", "max_tokens",
                      "temperature", "top_p", "stop", "seed", "logprobs", "ignore_eos",
                      "response_format"?}`` (JSON output, enforced by a grammar),
                   ``{"op": "cancel", "id"}``,
                   ``{"op": "stats", "id"}``, ``{"op": "shutdown"}``
worker -> gateway  ``{"ev": "ready", ...}``, ``{"ev": "start", "id", "prompt_tokens"}``,
                   ``{"ev": "delta", "id", "text", "tokens", "logprobs"?}`` (the tokens
                   the text carries; with ``logprobs`` a request asked for, each one's
                   ``{"token", "logprob", "bytes", "top"}``),
                   ``{"ev": "done", "id", "finish_reason", "prompt_tokens",
                   "completion_tokens", "engine_seconds", "energy_j", "queue_seconds"}``,
                   ``{"ev": "error", "id", "code", "message"}``,
                   ``{"ev": "stats", "id", "running", "waiting", "kv_cache_usage",
                      "prefix_cache_queries", "prefix_cache_hits", "energy_charged_j",
                      "energy_idle_j"}``

A reader thread queues commands; the main thread plans a batch (``Scheduler``), decodes it,
samples one token per generating sequence and streams text out. Commands are drained between
steps, so a new request joins the running batch at the next step and a cancel frees its slot
at once. Energy is read from a counter after every step and split among the step's sequences
(``metering/energy.py``).
"""

from __future__ import annotations

import argparse
import codecs
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferplane.engines.llama import LlamaError, LlamaModel
from inferplane.engines.model_files import resolve_model
from inferplane.engines.scheduler import Scheduler, Sequence
from inferplane.engines.stopper import Stopper
from inferplane.metering.energy import EnergySplit
from inferplane.metering.energy_counters import CpuModelCounter

Message = dict[str, Any]


class Channel:
    """Newline-delimited JSON over a socket; ``send`` is safe from any thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.inbox: queue.Queue[Message] = queue.Queue()
        threading.Thread(target=self._read, name="engine-reader", daemon=True).start()

    def send(self, message: Message) -> None:
        data = orjson.dumps(message) + b"\n"
        with self._lock:
            self._sock.sendall(data)

    def _read(self) -> None:
        with self._sock.makefile("rb") as stream:
            for line in stream:
                self.inbox.put(orjson.loads(line))
        self.inbox.put({"op": "shutdown"})  # the gateway went away


@dataclass(slots=True)
class _Decoding:
    """Per-sequence state the scheduler does not need to know about."""

    sampler: Any
    stopper: Stopper
    logprobs: int | None = None  # alternatives per token, when the request wants log probs
    ignore_eos: bool = False
    utf8: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )
    held: int = 0  # tokens generated whose text the stopper has not let out yet
    held_logprobs: list[Message] = field(default_factory=list)

    def delta(self, request_id: str, text: str) -> Message:
        """The event for ``text``: it carries the tokens held until now."""
        event: Message = {"ev": "delta", "id": request_id, "text": text, "tokens": self.held}
        if self.logprobs is not None:
            event["logprobs"] = self.held_logprobs
            self.held_logprobs = []
        self.held = 0
        return event


def grammar(response_format: Message | None) -> str | None:
    """The GBNF grammar that keeps the output to ``response_format``: any JSON object for
    ``json_object``, the schema's instances for ``json_schema`` (llama.cpp's converter)."""
    if response_format is None:
        return None
    from llama_cpp import llama_grammar

    if response_format.get("type") == "json_object":
        return str(llama_grammar.JSON_GBNF)
    schema = response_format["json_schema"]["schema"]
    return str(llama_grammar.json_schema_to_gbnf(orjson.dumps(schema).decode()))


class Worker:
    def __init__(self, model: LlamaModel, channel: Channel, parallel: int,
                 energy: EnergySplit) -> None:
        self.model = model
        self.channel = channel
        self.scheduler = Scheduler(parallel, model.n_batch, model.trim)
        self.kv_capacity = max(1, model.n_ctx_seq * parallel)  # positions over all slots
        self.state: dict[str, _Decoding] = {}
        self.energy = energy
        self.running = True

    def run(self) -> None:
        while self.running:
            idle = len(self.scheduler) == 0
            if idle:
                self.energy.idle()
            self._drain(block=idle)
            if idle:
                self.energy.idle()  # the wait was nobody's
            if self.running:
                self._step()

    # -- commands ------------------------------------------------------------------------

    def _drain(self, *, block: bool) -> None:
        try:
            message = self.channel.inbox.get(block=block)
            while True:
                self._handle(message)
                message = self.channel.inbox.get_nowait()
        except queue.Empty:
            return

    def _handle(self, message: Message) -> None:
        op = message.get("op")
        if op == "generate":
            self._admit(message)
        elif op == "cancel":
            self._cancel(str(message["id"]))
        elif op == "stats":
            sched = self.scheduler
            self.channel.send({
                "ev": "stats", "id": message["id"], "running": len(sched.running),
                "waiting": sched.waiting,
                "kv_cache_usage": sched.kv_tokens() / self.kv_capacity,
                "prefix_cache_queries": sched.prefix_queries,
                "prefix_cache_hits": sched.prefix_hits,
                "energy_charged_j": self.energy.charged_j, "energy_idle_j": self.energy.idle_j,
            })
        elif op == "shutdown":
            self.running = False

    def _admit(self, message: Message) -> None:
        request_id = str(message["id"])
        if "segments" in message:
            tokens = self.model.tokenize_segments([(t, bool(s)) for t, s in message["segments"]])
        else:
            tokens = self.model.tokenize(str(message["prompt"]), add_bos=True, special=False)
        limit = self.model.n_ctx_seq
        max_tokens = message.get("max_tokens")
        wanted = len(tokens) + (max_tokens or 1)
        if wanted > limit:
            asked = f" ({len(tokens)} in the prompt, {max_tokens} for the completion)"
            self.channel.send({
                "ev": "error", "id": request_id, "code": "context_length_exceeded",
                "message": f"This model's maximum context length is {limit} tokens, "
                f"but {wanted} were requested{asked if max_tokens else ''}.",
            })
            return
        try:
            sampler = self.model.new_sampler(
                temperature=float(message.get("temperature", 1.0)),
                top_p=float(message.get("top_p", 1.0)),
                seed=message.get("seed"),
                grammar=grammar(message.get("response_format")),
            )
        except (LlamaError, ValueError, KeyError, TypeError, RecursionError) as exc:
            self.channel.send({"ev": "error", "id": request_id, "code": "invalid_response_format",
                               "message": f"This engine cannot enforce the response format: "
                               f"{exc}"})
            return
        logprobs = message.get("logprobs")
        self.state[request_id] = _Decoding(sampler, Stopper(tuple(message.get("stop") or ())),
                                           None if logprobs is None else int(logprobs),
                                           bool(message.get("ignore_eos")))
        self.scheduler.submit(Sequence(request_id, tokens, max_tokens or limit - len(tokens),
                                       submitted_at=time.perf_counter(),
                                       batch=message.get("priority") == "batch"))
        self.channel.send({"ev": "start", "id": request_id, "prompt_tokens": len(tokens)})

    def _cancel(self, request_id: str) -> None:
        """The client went away: free the slot now and report what was used until then.
        A request that already finished is unknown here; its ``done`` is on its way."""
        seq = self._release(request_id)
        if seq is not None:
            self._send_done(seq, "cancelled")

    def _release(self, request_id: str) -> Sequence | None:
        """Drop a sequence; its slot keeps its KV cache for a later prompt that shares it."""
        seq = self.scheduler.remove(request_id)
        state = self.state.pop(request_id, None)
        if state is not None:
            self.model.free_sampler(state.sampler)
        return seq

    # -- one decode step -----------------------------------------------------------------

    def _step(self) -> None:
        work = self.scheduler.plan()
        if not work:
            return
        started = time.perf_counter()
        for item in work:
            if item.seq.queue_seconds is None:  # its first step: it waited until now
                item.seq.queue_seconds = started - item.seq.submitted_at
        try:
            indices = self.model.decode(work)
        except LlamaError as exc:
            self._fail_all(str(exc))
            return
        sampled = [
            (item.seq, self._sample(self.state[item.seq.id], index))
            for item, index in zip(work, indices, strict=True)
            if index >= 0
        ]
        elapsed = time.perf_counter() - started
        tokens = [len(item.tokens) for item in work]
        total = sum(tokens)
        for item, n, joules in zip(work, tokens, self.energy.step(tokens), strict=True):
            item.seq.engine_seconds += elapsed * n / total
            item.seq.energy_j += joules
            Scheduler.advance(item)
        for seq, token in sampled:
            self._on_token(seq, token)

    def _sample(self, state: _Decoding, index: int) -> int:
        """The next token at batch ``index``; with its log probabilities held for the text it
        will be part of, when the request asked for them (read before the next decode)."""
        token = self.model.sample(state.sampler, index)
        if state.logprobs is not None:
            logprob, top = self.model.logprobs(index, token, state.logprobs)
            state.held_logprobs.append(
                {**self._token(token), "logprob": logprob,
                 "top": [{**self._token(t), "logprob": lp} for t, lp in top]})
        return token

    def _token(self, token: int) -> Message:
        piece = self.model.piece(token)
        return {"token": piece.decode("utf-8", "replace"), "bytes": list(piece)}

    def _on_token(self, seq: Sequence, token: int) -> None:
        state = self.state[seq.id]
        if self.model.is_eog(token) and not state.ignore_eos:
            state.held_logprobs.clear()  # the end of the sequence is no token of its text
            self._finish(seq, "stop")
            return
        seq.generated += 1
        state.held += 1
        text = state.stopper.feed(state.utf8.decode(self.model.piece(token)))
        if text:
            self.channel.send(state.delta(seq.id, text))
        if state.stopper.stopped:
            self._finish(seq, "stop")
        elif seq.generated >= seq.max_new_tokens:
            self._finish(seq, "length")
        else:
            seq.next_token = token

    def _fail_all(self, reason: str) -> None:
        """A batch failed to decode: fail every running sequence and start clean."""
        for request_id in list(self.scheduler.running):
            self.channel.send({"ev": "error", "id": request_id, "code": "engine_error",
                               "message": f"The engine failed to decode: {reason}"})
            self._release(request_id)
        for slot in self.scheduler.forget_caches():  # what a failed batch left is not trusted
            self.model.clear(slot)

    def _finish(self, seq: Sequence, reason: str) -> None:
        state = self.state[seq.id]
        tail = state.stopper.feed(state.utf8.decode(b"", final=True)) + state.stopper.flush()
        if tail:
            self.channel.send(state.delta(seq.id, tail))
        self._send_done(seq, reason, state.stopper.matched)
        self._release(seq.id)

    def _send_done(self, seq: Sequence, reason: str, stop_sequence: str | None = None) -> None:
        self.channel.send({
            "ev": "done", "id": seq.id, "finish_reason": reason,
            "prompt_tokens": len(seq.prompt), "completion_tokens": seq.generated,
            "cached_tokens": seq.reused, "queue_seconds": seq.queue_seconds,
            "engine_seconds": seq.engine_seconds, "energy_j": seq.energy_j,
            "stop_sequence": stop_sequence,
        })


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Inferplane's embedded llama.cpp engine")
    parser.add_argument("--fd", type=int, required=True, help="socket to the gateway")
    parser.add_argument("--model", required=True, help="builtin:NAME or a path to a .gguf file")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--context", type=int, default=2048, help="tokens per sequence")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--watts-per-core", type=float, default=0.0,
                        help="the energy model's power of one busy core (TDP / cores)")
    args = parser.parse_args(argv)
    # The gateway owns this process's lifetime: it sends "shutdown" when it drains and the
    # socket closes if it dies. Ctrl-C in a terminal or a SIGTERM to the whole process group
    # (systemd, docker stop) must not kill the engine under requests the gateway is draining.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    channel = Channel(socket.socket(fileno=args.fd))
    path = resolve_model(args.model)
    model = LlamaModel(
        str(path), n_seq=args.parallel, n_ctx_seq=args.context, n_batch=args.batch,
        n_threads=args.threads or None,
    )
    counter = CpuModelCounter(args.watts_per_core)  # after loading: the weights are resident
    channel.send({
        "ev": "ready", "model_path": str(path), "n_ctx_seq": model.n_ctx_seq,
        "parallel": args.parallel, "n_ctx_train": model.n_ctx_train,
        "energy_method": counter.method, "ram_watts": counter.ram_watts,
    })
    Worker(model, channel, args.parallel, EnergySplit(counter)).run()


if __name__ == "__main__":
    main()
