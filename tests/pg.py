"""A throw-away PostgreSQL for tests, benchmarks and CI: ``initdb`` into a temporary directory, start
``postgres`` on a free loopback port (fsync on: benchmarks measure it), wait until it accepts, stop it.

As root (these machines, CI) the server runs as the ``postgres`` system user (PostgreSQL refuses to
run as root), via ``setpriv``; otherwise as the current user. The binaries are looked up on PATH,
then in ``/usr/lib/postgresql/*/bin`` (newest first).

Command line (``.ci/run`` uses it)::

    python -m tests.pg start DIR     # prints the URL of a superuser connection; the server keeps running
    python -m tests.pg stop DIR      # fast shutdown, then removes DIR

In pytest, :func:`session_server` starts one for the whole run unless ``CC_TEST_POSTGRES_URL`` names
a server already (read when this module is imported, before any test clears ``CC_*``), and
:func:`fresh_database` makes a new database per test from a migrated template (a file copy: fast).
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

ENV_URL = "CC_TEST_POSTGRES_URL"
#: The server named by the environment when this module was first imported (None: start our own).
EXTERNAL_URL = os.environ.get(ENV_URL) or None
#: The database every test database is copied from (migrated once per run; one per run, so runs
#: sharing a server do not rebuild each other's).
TEMPLATE = f"cc_test_template_{os.getpid()}"
SERVICE_USER = "postgres"
START_TIMEOUT_S = 60.0

_T = TypeVar("_T")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found, or the server would not start."""


def bin_dir() -> Path:
    """The folder holding ``initdb`` and ``postgres``."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # a symlink (e.g. in /usr/local/bin) to the real folder
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if not candidates:
        raise PostgresUnavailable(
            "PostgreSQL's server binaries (initdb, postgres) were not found on PATH or in /usr/lib/postgresql/*/bin;"
            " install them (Debian: apt-get install postgresql) or set CC_TEST_POSTGRES_URL to a server")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_service_user() -> list[str]:
    """The command prefix that drops root to the ``postgres`` user ([] when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(f"running as root needs a {SERVICE_USER!r} system user to run PostgreSQL as") from None
    return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", "--"]


def _parent() -> str | None:
    """Where to make the cluster's directory: the usual temporary folder, unless we are root and
    the ``postgres`` user could not reach into it (a TMPDIR under /root), then /tmp."""
    folder = Path(tempfile.gettempdir())
    if os.geteuid() != 0:
        return None
    reachable = all(os.stat(p).st_mode & 0o001 for p in [folder, *folder.parents])
    return None if reachable else "/tmp"


class ThrowawayPostgres:
    """One PostgreSQL cluster in ``root`` (a new temporary directory by default)."""

    def __init__(self, root: Path | None = None, *, user: str = "cc") -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="cc-pg-", dir=_parent()))
        self.user = user
        self.port = 0
        self.running = False  # a server was started from this object and not stopped yet

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        """initdb (once), start the server, wait until it accepts connections; returns its URL."""
        binaries, prefix = bin_dir(), _as_service_user()
        self.root.mkdir(parents=True, exist_ok=True)
        if prefix:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.root.chmod(0o700)
        if not (self.data / "PG_VERSION").exists():
            # Trust on loopback only (listen_addresses below); -N skips initdb's own final sync:
            # the server itself runs with fsync on.
            result = subprocess.run(
                [*prefix, str(binaries / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust",
                 "--encoding=UTF8", "--locale=C", "-N"],
                capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise PostgresUnavailable(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        self.port = free_port()
        options = " ".join([
            "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
            "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=300", "-c", "shared_buffers=128MB"])
        # pg_ctl -w is PostgreSQL's own wait: it returns once the server accepts connections (or fails).
        self.running = True
        result = subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
             "-o", options, "-w", "-t", str(int(START_TIMEOUT_S)), "start"],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            self.stop(remove=False)
            raise PostgresUnavailable(f"postgres did not start: {result.stderr.strip()} {self.log_tail()}")
        (self.root / "postmaster.url").write_text(self.url)
        return self.url

    def log_tail(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, *, remove: bool = True) -> None:
        """Fast shutdown (pg_ctl waits for it; immediate after 30 s), then remove the directory."""
        if self.running:
            self.running = False
            _pg_ctl_stop(self.data)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def _pg_ctl_stop(data: Path) -> None:
    """Stop the server of ``data`` and wait until it has exited (pg_ctl's own wait)."""
    if not (data / "postmaster.pid").exists():
        return
    command = [*_as_service_user(), str(bin_dir() / "pg_ctl"), "-D", str(data), "-w", "-t", "30", "stop"]
    fast = subprocess.run([*command, "-m", "fast"], capture_output=True, check=False)
    if fast.returncode != 0:
        subprocess.run([*command, "-m", "immediate"], capture_output=True, check=False)


def stop_directory(root: Path) -> None:
    """Stop the server a ``python -m tests.pg start`` left running in ``root`` and remove ``root``."""
    _pg_ctl_stop(root / "data")
    shutil.rmtree(root, ignore_errors=True)


# -- one server and its databases for a pytest run ------------------------------------------------------

class _Loop:
    """An event loop on its own thread, for administrative statements from sync or async code alike."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pg-admin", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)


_lock = threading.Lock()
_server: ThrowawayPostgres | None = None
_base_url: str | None = None
_admin: _Loop | None = None
_template_ready = False


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def session_server() -> str:
    """The URL of this run's PostgreSQL (``CC_TEST_POSTGRES_URL``, or one started now and stopped at exit)."""
    global _server, _base_url, _admin
    with _lock:
        if _base_url is None:
            if EXTERNAL_URL:
                _base_url = EXTERNAL_URL
            else:
                _server = ThrowawayPostgres()
                _base_url = _server.start()
            atexit.register(stop_session_server)
            _admin = _Loop()
        return _base_url


def stop_session_server() -> None:
    """Stop the server this run started; on a server it was given, drop the run's template."""
    global _server, _base_url, _template_ready
    with _lock:
        server, _server = _server, None
        base, had_template = _base_url, _template_ready
        _base_url, _template_ready = None, False
        if server is not None:
            server.stop()
        elif base is not None and had_template and _admin is not None:
            _admin.run(_admin_execute(base, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))


async def _admin_execute(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _build_template(url: str) -> None:
    from storage.postgres import PostgresStore

    await _admin_execute(url, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)",
                         f"CREATE DATABASE {TEMPLATE} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
    store = PostgresStore(with_database(url, TEMPLATE), pool_size=1)
    await store.open()
    await store.close()


def fresh_database(*, migrated: bool = True) -> str:
    """The URL of a new, empty database (with the current schema when ``migrated``); drop it with
    :func:`drop_database`."""
    global _template_ready
    base = session_server()
    assert _admin is not None
    template = "template0"
    if migrated:
        with _lock:
            if not _template_ready:
                _admin.run(_build_template(base))
                _template_ready = True
        template = TEMPLATE
    name = f"cc_test_{uuid.uuid4().hex[:16]}"
    # ≈20 ms here (PostgreSQL 15's WAL_LOG copy of a small template); dropping it ≈50 ms.
    _admin.run(_admin_execute(base, f"CREATE DATABASE {name} TEMPLATE {template}"))
    return with_database(base, name)


def drop_database(url: str) -> None:
    base = session_server()
    assert _admin is not None
    name = urlsplit(url).path.lstrip("/")
    _admin.run(_admin_execute(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.pg start|stop DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    if argv[0] == "stop":
        stop_directory(root)
        return 0
    server = ThrowawayPostgres(root)
    try:
        print(server.start())
    except PostgresUnavailable as error:
        print(f"tests.pg: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
