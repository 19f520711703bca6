"""PostgreSQL and Redis as real processes on loopback, started by the tests themselves::

    with running_postgres(tmp) as url:      # postgresql+psycopg://postgres@127.0.0.1:PORT/inferplane
        store = Store.open(fresh_database(url, "ledger"))
    with running_redis(tmp) as url:         # redis://127.0.0.1:PORT/0
        ...

Each server lives in a directory of its own under ``root`` (data, unix socket, log) and is
stopped on exit. ``make services`` installs the binaries; without them a :class:`MissingService`
says so. PostgreSQL refuses to run as root: as root, its files belong to the ``postgres``
system user and its processes run as that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

PG_BIN = Path(os.environ.get("INFERPLANE_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"  # the superuser initdb creates, and the system user it runs as under root
PG_DATABASE = "inferplane"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
INSTALL_HINT = "run `make services` (it installs them with apt-get)"


class MissingService(RuntimeError):
    """A server binary the tests need is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` and wait; kill it if it does not end in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- PostgreSQL ---------------------------------------------------------------------------


def postgres_bin(name: str) -> Path:
    """The path of PostgreSQL 15's ``name`` binary (``$INFERPLANE_PG_BIN`` overrides the dir)."""
    path = PG_BIN / name
    if not os.access(path, os.X_OK):
        raise MissingService(f"PostgreSQL 15 is not installed ({path} is missing): {INSTALL_HINT}")
    return path


class _PostgresUser:
    """How to run PostgreSQL's programs: as ``postgres`` when we are root, else as ourselves."""

    def __init__(self) -> None:
        self._pw = pwd.getpwnam(PG_USER) if os.geteuid() == 0 else None

    def own(self, path: Path) -> None:
        """Give ``path`` to the user the server runs as, and let that user reach it."""
        if self._pw is None:
            return
        os.chown(path, self._pw.pw_uid, self._pw.pw_gid)
        # Every directory above must be searchable (x, not r) by that user; pytest makes its
        # temporary directories 0700.
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    def popen_args(self) -> dict[str, Any]:
        if self._pw is None:
            return {}
        return {"user": self._pw.pw_uid, "group": self._pw.pw_gid, "extra_groups": []}

    def run(self, argv: Sequence[str | Path], cwd: Path) -> None:
        done = subprocess.run(
            [str(a) for a in argv], cwd=cwd, capture_output=True, check=False,
            **self.popen_args(),
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{Path(argv[0]).name} failed ({done.returncode}):\n{output}")


def _wait_postgres(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    isready = postgres_bin("pg_isready")
    argv = [str(isready), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-t", "1"]
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited ({proc.returncode}):\n{_log_tail(log)}")
        if subprocess.run(argv, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"postgres not ready after {START_TIMEOUT_S:.0f} s:\n{_log_tail(log)}")


@contextmanager
def running_postgres(root: Path) -> Iterator[str]:
    """A fresh PostgreSQL 15 cluster under ``root`` (``pgdata``, socket dir ``run``, log
    ``postgres.log``) serving 127.0.0.1 on a free port, with an empty database ``inferplane``.

    Yields ``postgresql+psycopg://postgres@127.0.0.1:PORT/inferplane`` (trust authentication).
    fsync is off: a crash of the machine may lose the cluster, which is only a test's.
    """
    initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
    user = _PostgresUser()
    root.mkdir(parents=True, exist_ok=True)
    data, run, log = root / "pgdata", root / "run", root / "postgres.log"
    for directory in (data, run):
        directory.mkdir(mode=0o700)
        user.own(directory)
    user.run([initdb, "-D", data, "-U", PG_USER, "-A", "trust", "-E", "UTF8",
              "--locale=C.UTF-8", "--no-sync", "--no-instructions"], cwd=root)
    settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(run),
                "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                "max_connections": "200"}
    for _attempt in range(3):  # the port was free when asked for, but may be taken since
        port = free_port()
        options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        with log.open("ab") as out:
            proc = subprocess.Popen([str(postgres), "-D", str(data), "-p", str(port), *options],
                                    stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                    **user.popen_args())
        try:
            _wait_postgres(proc, port, log)
            break
        except BaseException as exc:
            stop_process(proc, signal.SIGINT)
            if not isinstance(exc, RuntimeError) or "already in use" not in _log_tail(log, 300):
                raise
    else:
        raise RuntimeError(f"postgres found no free port:\n{_log_tail(log)}")
    try:
        url = f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{PG_DATABASE}"
        create_database(url, PG_DATABASE)
        yield url
    finally:
        stop_process(proc, signal.SIGINT)  # "fast" shutdown: roll back open transactions, end


def _admin_conninfo(url: str) -> str:
    """A libpq conninfo for ``url``'s server, on the maintenance database ``postgres``."""
    parsed = make_url(url)
    return psycopg.conninfo.make_conninfo(
        host=parsed.host or "127.0.0.1", port=str(parsed.port or 5432),
        user=parsed.username or PG_USER, password=parsed.password or "", dbname="postgres",
    )


def create_database(url: str, name: str) -> None:
    """Create database ``name`` on ``url``'s server, dropping any one of that name first."""
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_name(name: str) -> str:
    """``name`` as a plain PostgreSQL identifier, distinct for distinct names: kept as it is
    when it already is one, else made one and told apart by a digest of the original.

    >>> database_name("ledger")
    'ledger'
    >>> database_name("test_x[postgresql]")[:18]
    'test_x_postgresql_'
    """
    if re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        return name
    plain = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:50]
    return f"{plain}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def fresh_database(postgres_url: str, name: str) -> str:
    """A new, empty database on ``postgres_url``'s server (an old one of the name is dropped);
    returns its URL. ``name`` may be any text, e.g. a test's node name.
    """
    database = database_name(name)
    create_database(postgres_url, database)
    return make_url(postgres_url).set(database=database).render_as_string(hide_password=False)


@contextmanager
def refusing_connections(url: str) -> Iterator[None]:
    """``url``'s database out of reach while inside: its sessions ended, new ones refused (as
    when the server is down), superusers included; open again on exit."""
    name = make_url(url).database
    assert name, f"no database in {url!r}"
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as connection:
        connection.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        try:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            yield
        finally:
            connection.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
            )


# -- Redis --------------------------------------------------------------------------------


def redis_bin() -> Path:
    found = shutil.which("redis-server")
    if found is None:
        raise MissingService(f"Redis is not installed (no redis-server): {INSTALL_HINT}")
    return Path(found)


def _wait_redis(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({proc.returncode}):\n{_log_tail(log)}")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
    finally:
        client.close()
    raise TimeoutError(f"redis-server not ready after {START_TIMEOUT_S:.0f} s:\n{_log_tail(log)}")


@contextmanager
def running_redis(root: Path) -> Iterator[str]:
    """``redis-server`` on 127.0.0.1 and a free port, without persistence, its log and working
    directory ``root``. Yields ``redis://127.0.0.1:PORT/0``.
    """
    server = redis_bin()
    root.mkdir(parents=True, exist_ok=True)
    log = root / "redis.log"
    for _attempt in range(3):  # the port was free when asked for, but may be taken since
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        argv = [str(server), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", str(root), "--daemonize", "no",
                "--protected-mode", "no", "--logfile", ""]
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=root)
        try:
            _wait_redis(proc, url, log)
            break
        except BaseException as exc:
            stop_process(proc, signal.SIGTERM)
            if not isinstance(exc, RuntimeError) or "already in use" not in _log_tail(log, 300):
                raise
    else:
        raise RuntimeError(f"redis-server found no free port:\n{_log_tail(log)}")
    try:
        yield url
    finally:
        stop_process(proc, signal.SIGTERM)  # with no persistence configured, it saves nothing
