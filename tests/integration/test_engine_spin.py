"""The embedded engine's spin setting reaches its worker process, which still generates."""

from __future__ import annotations

from pathlib import Path

from inferplane.engines.supervisor import EngineSupervisor, WorkerSpec


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


async def test_worker_runs_with_the_spin_count() -> None:
    spec = WorkerSpec(model="builtin:gemma-3-270m", parallel=1, context=256, batch=64,
                      threads=1, spin=20000)
    engine = EngineSupervisor("spin", spec)
    await engine.start()
    try:
        assert await engine.wait_ready(120)
        assert engine.pid is not None
        assert _environ(engine.pid)["GOMP_SPINCOUNT"] == "20000"
        payload = {"id": "r1", "prompt": "One, two,", "max_tokens": 4, "temperature": 0.0,
                   "top_p": 1.0, "stop": [], "seed": 1, "logprobs": None,
                   "ignore_eos": True, "priority": "interactive"}
        events = [event async for event in engine.generate(payload)]
        assert events[-1]["ev"] == "done"
        assert events[-1]["completion_tokens"] == 4
    finally:
        await engine.stop()
