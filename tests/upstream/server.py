"""The upstream server: a raw ASGI app on uvicorn, and its command line.

    python -m tests.upstream.server --port 0 --api-key sk-test --name up1

prints ``READY <port>`` once its socket listens. One request goes: route -> fault (if one is
queued for it) -> auth -> JSON body -> protocol handler -> paced delivery. Raw ASGI rather than
Starlette: the hot path is a dict lookup and one ``orjson`` call each way.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
from urllib.parse import parse_qsl

import orjson
import uvicorn
from uvicorn.supervisors import Multiprocess

from . import control
from .connection import Connection, Protocol, Receive, Scope, Send
from .delivery import deliver_body, deliver_stream
from .faults import NORMAL, Plan
from .routes import OPENAI, Route, resolve
from .settings import Settings
from .state import State
from .wire import JSON, Body, Output, Request, Stream, WireError, new_id

SETTINGS_ENV = "UPSTREAM_SETTINGS"
JSON_HEADERS = [(b"content-type", JSON)]
#: handler failures on odd input that a real API would refuse as a bad request
BAD_INPUT = (KeyError, TypeError, AttributeError, ValueError, IndexError)


class UpstreamApp:
    """The ASGI application: the control API, then the provider routes."""

    def __init__(self, settings: Settings) -> None:
        self.state = State(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        conn = Connection(scope, receive, send)
        method, path = scope["method"], scope["path"]
        if path.startswith("/_control/"):
            status, reply = control.handle(self.state, method, path, await conn.read_body())
            await conn.respond(status, JSON_HEADERS, orjson.dumps(reply))
            return
        match = resolve(method, path)
        if match is None:
            await conn.read_body()
            body = OPENAI.error(WireError(404, f"Invalid URL ({method} {path})"))
            await conn.respond(404, JSON_HEADERS, body.payload)
            return
        await self.serve(conn, *match)

    async def serve(self, conn: Connection, route: Route, params: dict[str, str]) -> None:
        state, scope = self.state, conn.scope
        settings = state.settings
        raw = await conn.read_body()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        qs = scope["query_string"]
        query = dict(parse_qsl(qs.decode("latin-1"))) if qs else {}
        req = Request(scope["method"], scope["path"], query, headers, None, params)
        route = route.variant(headers)
        dialect = route.dialect
        fault = state.faults.take(req.path, dialect.name) if route.inference and state.faults \
            else None
        plan = fault.plan() if fault is not None else NORMAL
        auth = dialect.auth_error(req, settings)
        bad_json = False
        if raw:
            try:
                req.body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad_json = True
        output = self.outcome(req, route, plan, auth, bad_json, settings)
        status = output.status if isinstance(output, Body) else 200
        kind = fault.kind if fault is not None else None
        state.count(dialect.name, status, kind)
        if settings.log_requests:
            state.record(req, raw, dialect.name, auth is None, status, kind)
        extra = [(dialect.request_id_header, new_id("req_").encode()), *dialect.headers]
        state.in_flight += 1
        try:
            if plan.hang:
                await conn.wait_disconnect()
            elif isinstance(output, Stream):
                await deliver_stream(conn, output, plan, settings, extra,
                                     lambda s: dialect.stream_error(s or dialect.overloaded))
            else:
                await deliver_body(conn, output, plan, settings, extra)
        finally:
            state.in_flight -= 1

    @staticmethod
    def outcome(req: Request, route: Route, plan: Plan, auth: WireError | None,
                bad_json: bool, settings: Settings) -> Output:
        """What to answer: a fault's status, an auth or parse error, or the handler's output."""
        dialect = route.dialect
        if plan.status is not None:
            return _fault_status(route, plan.status, plan)
        if auth is not None:
            return dialect.error(auth)
        if bad_json:
            return dialect.error(WireError(400, dialect.bad_json))
        try:
            output = route.handler(req, settings)
        except WireError as err:
            return dialect.error(err)
        except BAD_INPUT as exc:
            return dialect.error(WireError(400, f"Invalid request: {exc!r}"))
        if isinstance(output, Body) and plan.cut == "error":
            return _fault_status(route, plan.error_status or dialect.overloaded, plan)
        return output


def _fault_status(route: Route, status: int, plan: Plan) -> Body:
    body = route.dialect.error(WireError(status, plan.message or ""))
    if plan.retry_after is None:
        return body
    return dataclasses.replace(body, headers=(
        *body.headers, (b"retry-after", f"{plan.retry_after:g}".encode())))


def app_from_env() -> UpstreamApp:
    """The app of a worker process, configured by the ``UPSTREAM_SETTINGS`` JSON."""
    return UpstreamApp(Settings.from_json(os.environ[SETTINGS_ENV]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.upstream.server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (see READY line)")
    p.add_argument("--name", default="upstream", help="shown in replies: [NAME] echo: ...")
    p.add_argument("--api-key", default=None, help="required key; default accepts any or none")
    p.add_argument("--models", default="", help="comma-separated served models; default any")
    p.add_argument("--think-ms", type=float, default=0.0, help="time to first token")
    p.add_argument("--token-delay-ms", type=float, default=0.0, help="time per later token")
    p.add_argument("--cached-tokens", type=int, default=0)
    p.add_argument("--reasoning-tokens", type=int, default=0)
    p.add_argument("--embedding-dim", type=int, default=1536)
    p.add_argument("--workers", type=int, default=1,
                   help="processes sharing the port; each has its own faults and log")
    p.add_argument("--no-log", action="store_true", help="keep no request log (benchmarks)")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        name=args.name, api_key=args.api_key,
        models=tuple(m for m in args.models.split(",") if m),
        think_ms=args.think_ms, token_delay_ms=args.token_delay_ms,
        cached_tokens=args.cached_tokens, reasoning_tokens=args.reasoning_tokens,
        embedding_dim=args.embedding_dim, log_requests=not args.no_log,
    )


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = settings_from(args)
    sock = listen(args.host, args.port)
    common = {"loop": "uvloop", "http": Protocol, "lifespan": "off", "access_log": False,
              "log_level": "warning", "timeout_graceful_shutdown": 1, "timeout_keep_alive": 30,
              "server_header": False, "backlog": 4096}
    print(f"READY {sock.getsockname()[1]}", flush=True)
    if args.workers > 1:
        os.environ[SETTINGS_ENV] = settings.to_json().decode()
        config = uvicorn.Config("tests.upstream.server:app_from_env", factory=True,
                                workers=args.workers, **common)  # type: ignore[arg-type]
        Multiprocess(config, sockets=[sock]).run()
    else:
        config = uvicorn.Config(UpstreamApp(settings), **common)  # type: ignore[arg-type]
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
