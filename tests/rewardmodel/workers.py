"""Real Celery worker, beat and Redis processes for tests (no fakes).

The fixtures in tests/rewardmodel/conftest.py wrap these; other test
folders may import them directly:

    from tests.rewardmodel.workers import start_worker, worker_env, wait_for

A worker is `celery -A config worker` in its own process group, sharing
the test database (the SQLite file, or the PostgreSQL test database) and
the test process's Redis db. A test that uses one needs `transactional_db`
(the worker cannot see rows inside the test's transaction).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll until `predicate()` is truthy and return its value, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def database_env() -> dict[str, str]:
    """Environment that points a subprocess at the database this test uses."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError("a worker process cannot share an in-memory SQLite test database")
        return {"SQLITE_PATH": name, "DATABASE_URL": ""}
    if "postgresql" in db["ENGINE"]:
        user = db.get("USER") or "postgres"
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
        return {"DATABASE_URL": f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"}
    raise RuntimeError(f"unsupported database engine {db['ENGINE']}")


def worker_env(*, redis_url: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment, plus the test database, Redis and fast retraining settings."""
    env = dict(os.environ)
    env.update(database_env())
    if not env.get("DATABASE_URL"):
        env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        REDIS_URL=redis_url or os.environ["REDIS_URL"],
        MODEL_ARTIFACTS_DIR=str(settings.MODEL_ARTIFACTS_DIR),
        FEATURE_CACHE_DIR=str(settings.FEATURE_CACHE_DIR),
        # The same retraining settings as this process (tests set them with
        # the `rm_settings` fixture: tiny preset, fast heartbeat, one thread).
        RM_TRAIN_PRESET=str(settings.RM_TRAIN_PRESET),
        RM_HEARTBEAT_SECONDS=str(settings.RM_HEARTBEAT_SECONDS),
        RM_TORCH_THREADS=str(settings.RM_TORCH_THREADS),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


@dataclass
class Process:
    """A child process in its own process group, with its output in a log file."""

    proc: subprocess.Popen
    log_path: Path
    name: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group (the worker and its pool children)."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def _spawn(cmd: list[str], *, env: dict[str, str], log_path: Path, name: str) -> Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    fh.close()
    return Process(proc=proc, log_path=log_path, name=name)


def flush_redis_db(url: str) -> None:
    """Empty this test run's own Redis database (never FLUSHALL: others share the server)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


def start_worker(
    *,
    log_dir: Path,
    queues: str = "training,default",
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
    flush: bool = True,
    ready_timeout: float = 90,
    concurrency: int = 1,
    max_tasks_per_child: int = 1,
) -> Process:
    """Start `celery -A config worker` and return once it is ready to take tasks."""
    url = redis_url or os.environ["REDIS_URL"]
    if flush:
        flush_redis_db(url)
    nodename = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        queues,
        "-n",
        nodename,
        "--concurrency",
        str(concurrency),
        "--max-tasks-per-child",
        str(max_tasks_per_child),
        "--prefetch-multiplier",
        "1",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "INFO",
    ]
    worker = _spawn(cmd, env=worker_env(redis_url=url, extra=env), log_path=log_dir / f"{nodename}.log", name=nodename)
    try:
        wait_for(
            lambda: "ready." in worker.log() or not worker.alive(),
            timeout=ready_timeout,
            interval=0.2,
            what=f"worker {nodename} to start",
        )
    except AssertionError:
        worker.kill()
        raise AssertionError(f"worker did not start:\n{worker.log()[-3000:]}") from None
    if not worker.alive():
        raise AssertionError(f"worker exited at start:\n{worker.log()[-3000:]}")
    return worker


def start_beat(*, log_dir: Path, redis_url: str | None = None, env: dict[str, str] | None = None) -> Process:
    """Start `celery -A config beat` with the database scheduler, looping every second."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "beat",
        "-l",
        "INFO",
        "--max-interval",
        "1",
        "--scheduler",
        "django_celery_beat.schedulers:DatabaseScheduler",
        "--pidfile=",
    ]
    beat = _spawn(cmd, env=worker_env(redis_url=redis_url, extra=env), log_path=log_dir / "beat.log", name="beat")
    wait_for(lambda: "beat: Starting" in beat.log() or not beat.alive(), timeout=60, interval=0.2, what="beat to start")
    if not beat.alive():
        raise AssertionError(f"beat exited at start:\n{beat.log()[-3000:]}")
    return beat


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    """A private redis-server for tests that stop it: never the shared one on 6379."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            wait_for(lambda: _pings(client), timeout=15, interval=0.05, what=f"redis on port {self.port}")
        finally:
            client.close()
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


@contextlib.contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at another broker for a while."""
    from config.celery import app

    old = app.conf.broker_url, app.conf.result_backend

    def switch(broker: str, backend: str) -> None:
        app.conf.broker_url, app.conf.result_backend = broker, backend
        # Connection and producer pools are cached per app: drop them.
        app._pool = None
        with contextlib.suppress(AttributeError, KeyError):
            app.__dict__["amqp"]._producer_pool = None

    switch(url, url)
    try:
        yield
    finally:
        switch(*old)
