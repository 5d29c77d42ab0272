"""Labeling throughput and latency: simulated annotators against gunicorn on PostgreSQL.

    python bench/labeling.py [--annotators 32] [--seconds 20] [--think-ms 1000]
                             [--database-url postgres://postgres@127.0.0.1:5432/bench_labeling]

What it measures, in one run on one machine:

1. Realistic load: N annotators, each looping GET /next -> think -> POST /vote
   through the JSON API with its own token; think time is exponential with
   mean --think-ms, as a human reads before deciding. Reports next and vote
   latency (p50, p99) and votes/s.
   A short unmeasured warm-up runs first (--warmup-seconds), so that workers'
   first-request imports and connection set-up are not counted as tail.
2. Saturation: the same N annotators with no think time, to show capacity
   (votes/s) and the latency when the server is the bottleneck.
3. The baseline: a trivial Django view (no DB) through the same middleware
   stack and the same gunicorn, at the same concurrency; the ratio says what
   our next+vote costs above Django's own floor.
4. Next-pair latency in-process at 10k vs 1M pairs in a project (median of
   repeated next+skip), which must stay flat: selection walks an index.
5. Integrity: votes stored == votes acknowledged, no (pair, annotator)
   duplicate, no pair over K.

The database named in --database-url is dropped and recreated.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bulk_pairs(project, n: int, prefix: str) -> None:
    """Insert n pairs fast (COPY), bypassing the import path: this benchmark is about serving."""
    import hashlib

    from django.db import connection

    from labeling.services import pair_content_hash, pair_split_for_prompt

    with connection.cursor() as cursor, cursor.copy(
        "COPY labeling_pair (project_id, prompt, response_a, response_b, content_hash, external_id, metadata,"
        " split, rank, slots_taken, vote_count, votes_a, votes_b, votes_tie, created_at) FROM STDIN"
    ) as copy:
        for i in range(n):
            prompt = f"{prefix} prompt {i}: how does thing {i} work?"
            a, b = f"A detailed answer number {i}.", f"short {i}"
            h = pair_content_hash(prompt=prompt, response_a=a, response_b=b)
            rank = int(hashlib.sha256(h.encode()).hexdigest()[:15], 16)
            copy.write_row((project.pk, prompt, a, b, h, "", "{}", pair_split_for_prompt(prompt=prompt, test_percent=20),
                            rank, 0, 0, 0, 0, 0, "2026-01-01T00:00:00Z"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_pair")


def make_annotators(project, n: int) -> list[str]:
    from django.contrib.auth.models import Group, User

    from labeling import roles, services

    roles.roles_sync()
    group = Group.objects.get(name=roles.ANNOTATOR)
    tokens = []
    for i in range(n):
        user = User.objects.create_user(f"bench{i}", password=None)
        user.groups.add(group)
        project.members.add(user)
        tokens.append(services.api_token_issue(user=user, name="bench")[1])
    return tokens


class Client:
    """One keep-alive HTTP connection, like one annotator's browser tab."""

    def __init__(self, port: int, token: str | None):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        payload = json.dumps(body) if body is not None else None
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=payload, headers=self.headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, data, (time.perf_counter() - t0) * 1000
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed an idle keep-alive connection: reconnect, as a
                # browser does. Safe to resend: a repeated vote returns the stored one.
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def run_annotators(port: int, slug: str, tokens: list[str], seconds: float, think_ms: float) -> dict:
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    next_ms: list[float] = []
    vote_ms: list[float] = []
    acknowledged: list[int] = []
    failures: list[str] = []

    def annotator(token: str, seed: int) -> None:
        rng = random.Random(seed)
        client = Client(port, token)
        try:
            annotate(client, rng)
        except OSError as exc:  # a dropped connection is a failure to report, not a crash
            failures.append(repr(exc))

    def annotate(client: Client, rng: random.Random) -> None:
        if think_ms:
            # Independent people are not in step: start each one part-way
            # through a think time, or all 32 first requests land at once.
            time.sleep(rng.expovariate(1000.0 / think_ms))
        while time.monotonic() < deadline:
            status, body, t_next = client.request("GET", f"/api/v1/projects/{slug}/next")
            if status == 204:
                break
            if status != 200:
                failures.append(f"next {status}")
                break
            assignment = json.loads(body)["assignment_id"]
            if think_ms:
                time.sleep(rng.expovariate(1000.0 / think_ms))
            status, body, t_vote = client.request(
                "POST", f"/api/v1/assignments/{assignment}/vote", {"choice": rng.choice(["left", "right", "tie"])}
            )
            if status not in (200, 201):  # 200: a resent vote that had already landed
                failures.append(f"vote {status} {body[:100]!r}")
                break
            with lock:
                next_ms.append(t_next)
                vote_ms.append(t_vote)
                acknowledged.append(json.loads(body)["vote_id"])

    started = time.monotonic()
    threads = [threading.Thread(target=annotator, args=(t, i)) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    both = [a + b for a, b in zip(next_ms, vote_ms)]
    return {
        "votes": len(acknowledged),
        "votes_per_s": round(len(acknowledged) / elapsed, 1),
        "next_p50_ms": round(percentile(next_ms, 50), 2),
        "next_p99_ms": round(percentile(next_ms, 99), 2),
        "vote_p50_ms": round(percentile(vote_ms, 50), 2),
        "vote_p99_ms": round(percentile(vote_ms, 99), 2),
        "next_plus_vote_p50_ms": round(percentile(both, 50), 2),
        "next_plus_vote_p99_ms": round(percentile(both, 99), 2),
        "failures": failures[:5],
        "acknowledged_ids": acknowledged,
    }


def run_trivial(port: int, clients: int, seconds: float, think_ms: float) -> dict:
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        client = Client(port, None)
        if think_ms:  # staggered start, as for the annotators
            time.sleep(rng.expovariate(1000.0 / think_ms))
        while time.monotonic() < deadline:
            try:
                status, _, ms = client.request("GET", "/bench/trivial")
            except OSError:
                client = Client(port, None)
                continue
            assert status == 200, status
            with lock:
                latencies.append(ms)
            if think_ms:
                time.sleep(rng.expovariate(1000.0 / think_ms))

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


def start_gunicorn(port: int, database_url: str, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "bench.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "120",
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            Client(port, None).request("GET", "/bench/trivial")
            return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("gunicorn did not start")


def next_latency_at(project, n_pairs: int, repeats: int = 300) -> float:
    """Median in-process next+skip time for a fresh annotator in a project of n_pairs."""
    from django.contrib.auth.models import Group, User

    from labeling import roles, services

    user = User.objects.create_user(f"probe-{project.slug}", password=None)
    user.groups.add(Group.objects.get(name=roles.ANNOTATOR))
    project.members.add(user)
    timings = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        assignment = services.assignment_next(project=project, user=user)
        timings.append((time.perf_counter() - t0) * 1000)
        services.assignment_skip(assignment_id=assignment.pk, user=user)
    return statistics.median(timings[20:])  # first calls warm caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_labeling")
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--think-ms", type=float, default=1000, help="mean think time per pair in the realistic run")
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--big-pairs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (gthread)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--warmup-seconds", type=float, default=3, help="unmeasured load before the phases")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each load phase; medians reported")
    args = parser.parse_args()

    recreate_database(args.database_url)
    setup_django(args.database_url)
    from labeling import services
    from labeling.models import Pair, Vote

    project = services.project_create(slug="bench", name="Bench", overlap_target=3)
    bulk_pairs(project, args.pairs, "bench")
    tokens = make_annotators(project, args.annotators)

    report: dict = {"machine": f"{os.cpu_count()} CPU cores", "annotators": args.annotators, "pairs": args.pairs}
    server = start_gunicorn(args.port, args.database_url, args.workers, args.threads)
    try:
        phases = {
            "realistic": (args.think_ms, args.seconds),
            "saturated": (0.0, args.seconds / 2),
        }
        # Warm up first, as a server is warm in steady state: each gunicorn
        # worker imports the API and opens its database connections on its
        # first requests, which would otherwise land in the measured tail.
        acknowledged: list[int] = run_annotators(
            args.port, project.slug, tokens, args.warmup_seconds, 0.0
        )["acknowledged_ids"]
        for phase, (think, secs) in phases.items():
            runs, trivial_runs = [], []
            for _ in range(args.repeats):
                run = run_annotators(args.port, project.slug, tokens, secs, think)
                acknowledged += run.pop("acknowledged_ids")
                runs.append(run)
                trivial_runs.append(run_trivial(args.port, args.annotators, secs / 2, think / 2))
            report[phase] = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "failures"}
            report[phase]["failures"] = sum((r["failures"] for r in runs), [])
            report[phase]["trivial_view"] = {key: statistics.median(r[key] for r in trivial_runs) for key in trivial_runs[0]}
            report[phase]["p99_ratio_vs_trivial"] = round(
                report[phase]["next_plus_vote_p99_ms"] / (2 * report[phase]["trivial_view"]["p99_ms"]), 2
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)

    stored = set(Vote.objects.filter(project=project).values_list("pk", flat=True))
    pairs_annotators = list(Vote.objects.filter(project=project).values_list("pair_id", "annotator_id"))
    report["integrity"] = {
        "acknowledged": len(set(acknowledged)),
        "stored": len(stored),
        "lost": len(set(acknowledged) - stored),
        "unacknowledged_extra": len(stored - set(acknowledged)),
        "duplicate_pair_annotator": len(pairs_annotators) - len(set(pairs_annotators)),
        "pairs_over_k": Pair.objects.filter(project=project, vote_count__gt=project.overlap_target).count(),
    }

    small = services.project_create(slug="scale-small", name="small")
    bulk_pairs(small, args.pairs, "small")
    big = services.project_create(slug="scale-big", name="big")
    bulk_pairs(big, args.big_pairs, "big")
    t_small = next_latency_at(small, args.pairs)
    t_big = next_latency_at(big, args.big_pairs)
    report["next_latency_scaling"] = {
        f"median_ms_at_{args.pairs}": round(t_small, 3),
        f"median_ms_at_{args.big_pairs}": round(t_big, 3),
        "ratio": round(t_big / t_small, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
