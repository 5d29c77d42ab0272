"""Labeling throughput and latency: simulated annotators against gunicorn on PostgreSQL.

    python bench/labeling.py [--annotators 32] [--seconds 30] [--think-ms 1000]
                             [--database-url postgres://postgres@127.0.0.1:5432/bench_labeling]

What it measures, in one run on one machine:

1. Realistic load: N annotators, each looping GET /next -> think -> POST /vote
   through the JSON API with its own token; think time is exponential with
   mean --think-ms, as a human reads before deciding. Reports next and vote
   latency (p50, p99) and votes/s. It runs twice: with durable votes (the
   default: a vote is acknowledged once its commit is on disk) and with
   LABELING_DURABLE_VOTES=0 (acknowledged before the flush). A third run
   labels as the labeling page does, one request per pair: POST
   vote-and-next stores the vote and returns the next pair.
   A short unmeasured warm-up runs first (--warmup-seconds), so that workers'
   first-request imports and connection set-up are not counted as tail.
   Beside gunicorn, `manage.py fold_aggregates --every 5` does the beat
   task's work (folding votes into the dashboard aggregates) on the same
   cores, as in production.
2. Saturation: the same N annotators with no think time, to show capacity
   (votes/s) and the latency when the server is the bottleneck.
3. The baseline: a trivial Django view (no DB) through the same middleware
   stack and the same gunicorn, at the same concurrency; the ratio says what
   our next+vote costs above Django's own floor (per request: a pair takes
   two requests, or one with vote-and-next).
4. The disk: while the load phases run, a thread times an 8 kB write plus
   fdatasync in PostgreSQL's data directory every 100 ms, the operation a
   durable commit waits for. Its tail is the floor of the durable vote's tail.
5. Next-pair latency in-process at 10k vs 1M pairs in a project (median of
   repeated next+skip), which must stay flat: selection walks an index.
6. Integrity: votes stored == votes acknowledged, no (pair, annotator)
   duplicate, no pair over K, and after a last fold every stored vote is in
   the dashboard aggregates exactly once.

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


def bulk_pairs(project, n: int, prefix: str, gold_every: int = 0) -> None:
    """Insert n pairs fast (COPY), bypassing the import path: this benchmark is about serving.

    With `gold_every` k, every k-th pair is a gold pair (answer a)."""
    import hashlib

    from django.db import connection

    from labeling.services import pair_content_hash, pair_split_for_prompt

    with (
        connection.cursor() as cursor,
        cursor.copy(
            "COPY labeling_pair (project_id, prompt, response_a, response_b, content_hash, external_id, metadata,"
            " split, rank, slots_taken, vote_count, votes_a, votes_b, votes_tie, archived, gold, created_at)"
            " FROM STDIN"
        ) as copy,
    ):
        for i in range(n):
            prompt = f"{prefix} prompt {i}: how does thing {i} work?"
            a, b = f"A detailed answer number {i}.", f"short {i}"
            h = pair_content_hash(prompt=prompt, response_a=a, response_b=b)
            rank = int(hashlib.sha256(h.encode()).hexdigest()[:15], 16)
            copy.write_row(
                (
                    project.pk,
                    prompt,
                    a,
                    b,
                    h,
                    "",
                    "{}",
                    pair_split_for_prompt(prompt=prompt, test_percent=20),
                    rank,
                    0,
                    0,
                    0,
                    0,
                    0,
                    False,
                    "a" if gold_every and i % gold_every == 0 else "",
                    "2026-01-01T00:00:00Z",
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_pair")


def make_annotators(project, n: int) -> list[str]:
    from django.contrib.auth.models import Group, User

    from accounts import roles
    from accounts import services as account_services

    roles.roles_sync()
    group = Group.objects.get(name=roles.ANNOTATOR)
    tokens = []
    for i in range(n):
        user = User.objects.create_user(f"bench{i}", password=None)
        user.groups.add(group)
        project.members.add(user)
        tokens.append(account_services.api_token_issue(user=user, name="bench")[1])
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


def run_annotators(
    port: int, slug: str, tokens: list[str], seconds: float, think_ms: float, *, one_request: bool = False
) -> dict:
    """Annotators labeling for `seconds`; latencies per pair.

    Two requests per pair (GET next, think, POST vote), as a client of the
    issue's API does; or, with `one_request`, the labeling page's way: GET
    next once, then per pair think and POST vote-and-next, which stores the
    vote and returns the next pair. Either way a pair's latency is what its
    requests took together (`next_plus_vote`).
    """
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    next_ms: list[float] = []
    vote_ms: list[float] = []
    pair_ms: list[float] = []
    acknowledged: list[int] = []
    failures: list[str] = []

    def annotator(token: str, seed: int) -> None:
        rng = random.Random(seed)
        client = Client(port, token)
        try:
            annotate(client, rng)
        except OSError as exc:  # a dropped connection is a failure to report, not a crash
            failures.append(repr(exc))

    def think(rng: random.Random) -> None:
        if think_ms:
            time.sleep(rng.expovariate(1000.0 / think_ms))

    def annotate(client: Client, rng: random.Random) -> None:
        # Independent people are not in step: start each one part-way
        # through a think time, or all 32 first requests land at once.
        think(rng)
        if one_request:
            annotate_one_request(client, rng)
            return
        while time.monotonic() < deadline:
            status, body, t_next = client.request("GET", f"/api/v1/projects/{slug}/next")
            if status != 200:
                if status != 204:
                    failures.append(f"next {status}")
                break
            think(rng)
            status, body, t_vote = client.request(
                "POST", f"/api/v1/assignments/{json.loads(body)['assignment_id']}/vote", choice(rng)
            )
            if status not in (200, 201):  # 200: a resent vote that had already landed
                failures.append(f"vote {status} {body[:100]!r}")
                break
            record(json.loads(body)["vote_id"], t_next + t_vote, t_next, t_vote)

    def annotate_one_request(client: Client, rng: random.Random) -> None:
        status, body, _ = client.request("GET", f"/api/v1/projects/{slug}/next")  # the page load: once
        leased = json.loads(body) if status == 200 else None
        while leased is not None and time.monotonic() < deadline:
            think(rng)
            status, body, t_pair = client.request(
                "POST", f"/api/v1/assignments/{leased['assignment_id']}/vote-and-next", choice(rng)
            )
            if status not in (200, 201):
                failures.append(f"vote-and-next {status} {body[:100]!r}")
                break
            reply = json.loads(body)
            record(reply["vote"]["vote_id"], t_pair)
            leased = reply["next"]

    def choice(rng: random.Random) -> dict:
        return {"choice": rng.choice(["left", "right", "tie"])}

    def record(vote_id: int, t_pair: float, t_next: float | None = None, t_vote: float | None = None) -> None:
        with lock:
            acknowledged.append(vote_id)
            pair_ms.append(t_pair)
            if t_next is not None:
                next_ms.append(t_next)
                vote_ms.append(t_vote)

    started = time.monotonic()
    threads = [threading.Thread(target=annotator, args=(t, i)) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {
        "votes": len(acknowledged),
        "votes_per_s": round(len(acknowledged) / elapsed, 1),
        "next_p50_ms": round(percentile(next_ms, 50), 2),
        "next_p99_ms": round(percentile(next_ms, 99), 2),
        "vote_p50_ms": round(percentile(vote_ms, 50), 2),
        "vote_p99_ms": round(percentile(vote_ms, 99), 2),
        "next_plus_vote_p50_ms": round(percentile(pair_ms, 50), 2),
        "next_plus_vote_p99_ms": round(percentile(pair_ms, 99), 2),
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


def start_gunicorn(
    port: int, database_url: str, workers: int, threads: int, *, durable_votes: bool
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LABELING_DURABLE_VOTES": "1" if durable_votes else "0",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "bench.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--config",
            "python:config.gunicorn",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--keep-alive",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
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


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


def start_folder(database_url: str, every: float) -> subprocess.Popen:
    """The beat task's work (folding live votes into the dashboard aggregates), in its own process."""
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings"}
    return subprocess.Popen(
        [sys.executable, "manage.py", "fold_aggregates", "--every", str(every)],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )


class DiskProbe:
    """Times write(8 kB) + fdatasync every 100 ms in a folder, in a thread: what a durable commit waits for.

    Not more often: on a virtual disk, flushes are what stalls, and a probe
    that flushed 100 times a second would add to what it measures.
    """

    def __init__(self, folder: Path | None):
        self.path = folder / f".bench-fsync-probe-{os.getpid()}" if folder else None
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DiskProbe:
        if self.path is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while not self._stop.wait(0.1):
                os.pwrite(fd, b"\0" * 8192, 0)
                t0 = time.perf_counter()
                os.fdatasync(fd)
                self.samples.append((time.perf_counter() - t0) * 1000)
        finally:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def report(self) -> dict:
        if not self.samples:
            return {"skipped": "no writable folder on the database's disk (--disk-probe-dir)"}
        return {
            "folder": str(self.path.parent),
            "samples": len(self.samples),
            "p50_ms": round(percentile(self.samples, 50), 2),
            "p99_ms": round(percentile(self.samples, 99), 2),
            "p99_9_ms": round(percentile(self.samples, 99.9), 2),
            "max_ms": round(max(self.samples), 2),
            "share_over_20ms": round(sum(x > 20 for x in self.samples) / len(self.samples), 4),
        }


def postgres_data_directory(url: str) -> Path | None:
    """PostgreSQL's data directory, if the server is on this machine and we may write there."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            folder = Path(conn.execute("SHOW data_directory").fetchone()[0])
    except psycopg.Error:  # not a superuser: no data_directory
        return None
    return folder if folder.is_dir() and os.access(folder, os.W_OK) else None


def next_latency_at(project, n_pairs: int, repeats: int = 300) -> float:
    """Median in-process next+skip time for a fresh annotator in a project of n_pairs."""
    from django.contrib.auth.models import Group, User

    from accounts import roles
    from labeling import services

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


def summarise(runs: list[dict]) -> dict:
    """Medians over the runs of a phase, plus each run's p99 (the figure the target is on)."""
    out = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "failures"}
    out["next_plus_vote_p99_ms_per_run"] = [r["next_plus_vote_p99_ms"] for r in runs]
    out["failures"] = sum((r["failures"] for r in runs), [])
    return out


PHASES = {"realistic", "realistic_votes_not_durable", "realistic_one_request", "saturated"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_labeling")
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30, help="length of each realistic run")
    parser.add_argument("--think-ms", type=float, default=1000, help="mean think time per pair in the realistic run")
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument(
        "--gold-every",
        type=int,
        default=0,
        help="make every k-th pair of the load project a gold pair (20: 5%%, served at the project's 5%%); "
        "pausing is then off, since the simulated annotators answer at random",
    )
    parser.add_argument("--big-pairs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (gthread)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--warmup-seconds", type=float, default=3, help="unmeasured load before the phases")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each load phase; medians reported")
    parser.add_argument("--fold-seconds", type=float, default=5, help="how often the folder runs (the beat interval)")
    parser.add_argument(
        "--disk-probe-dir",
        type=Path,
        default=None,
        help="a folder on the database's disk for the fsync probe (default: its data directory)",
    )
    parser.add_argument(
        "--phases", default=",".join(sorted(PHASES)), help="comma-separated load phases to run, of the four"
    )
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 10k vs 1M next-latency measurement")
    args = parser.parse_args()
    wanted = args.phases.split(",")
    unknown = set(wanted) - PHASES
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")

    recreate_database(args.database_url)
    setup_django(args.database_url)
    from dashboard import aggregates
    from dashboard.models import TallyBucket
    from labeling import services
    from labeling.models import Pair, Vote

    # The bench's annotators answer at random, gold pairs too: with gold pairs, pausing is off
    # (gold_pause_below 0), or paused annotators would leave the load.
    project = services.project_create(
        slug="bench", name="Bench", overlap_target=3, **({"gold_pause_below": 0.0} if args.gold_every else {})
    )
    bulk_pairs(project, args.pairs, "bench", gold_every=args.gold_every)
    tokens = make_annotators(project, args.annotators)
    from django.db import connection

    # Settle the database before measuring, as a live one is settled: planner
    # statistics and a vacuumed heap (what autovacuum keeps), so autovacuum does
    # not start on the fresh tables mid-run; and a checkpoint, so the setup's
    # dirty pages (and the last run's dropped database) are not flushed while
    # the load runs.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")  # needs superuser or pg_checkpoint, as the bench's postgres user has

    report: dict = {
        "machine": f"{os.cpu_count()} CPU cores",
        "annotators": args.annotators,
        "pairs": args.pairs,
        "gold_every": args.gold_every,
    }
    phases = [  # (name, durable votes, think ms, seconds, one request per pair)
        ("realistic", True, args.think_ms, args.seconds, False),
        ("realistic_votes_not_durable", False, args.think_ms, args.seconds, False),
        ("realistic_one_request", True, args.think_ms, args.seconds, True),
        ("saturated", True, 0.0, args.seconds / 2, False),
    ]
    phases = [phase for phase in phases if phase[0] in wanted]
    acknowledged: list[int] = []
    folder = start_folder(args.database_url, args.fold_seconds)
    probe = DiskProbe(args.disk_probe_dir or postgres_data_directory(args.database_url))
    try:
        with probe:
            for phase, durable, think, secs, one_request in phases:
                server = start_gunicorn(args.port, args.database_url, args.workers, args.threads, durable_votes=durable)
                try:
                    # Warm up first, as a server is warm in steady state: each gunicorn
                    # worker imports the API and opens its database connections on its
                    # first requests, which would otherwise land in the measured tail.
                    acknowledged += run_annotators(args.port, project.slug, tokens, args.warmup_seconds, 0.0)[
                        "acknowledged_ids"
                    ]
                    runs, trivial_runs = [], []
                    for _ in range(args.repeats):
                        run = run_annotators(args.port, project.slug, tokens, secs, think, one_request=one_request)
                        acknowledged += run.pop("acknowledged_ids")
                        runs.append(run)
                        trivial_runs.append(run_trivial(args.port, args.annotators, secs / 2, think / 2))
                finally:
                    stop(server)
                report[phase] = summarise(runs)
                report[phase]["trivial_view"] = {
                    key: statistics.median(r[key] for r in trivial_runs) for key in trivial_runs[0]
                }
                requests_per_pair = 1 if one_request else 2
                report[phase]["p99_ratio_vs_trivial"] = round(
                    report[phase]["next_plus_vote_p99_ms"]
                    / (requests_per_pair * report[phase]["trivial_view"]["p99_ms"]),
                    2,
                )
    finally:
        stop(folder)
    report["disk_fsync_during_load"] = probe.report()

    aggregates.aggregates_fold(project_id=project.pk)
    stored = set(Vote.objects.filter(project=project).values_list("pk", flat=True))
    pairs_annotators = list(Vote.objects.filter(project=project).values_list("pair_id", "annotator_id"))
    buckets = TallyBucket.objects.filter(project=project).values_list("n_a", "n_b", "n_tie", "pairs")
    report["integrity"] = {
        "acknowledged": len(set(acknowledged)),
        "stored": len(stored),
        "lost": len(set(acknowledged) - stored),
        "unacknowledged_extra": len(stored - set(acknowledged)),
        "duplicate_pair_annotator": len(pairs_annotators) - len(set(pairs_annotators)),
        # Gold pairs are served to every annotator, so K does not cap them.
        "pairs_over_k": Pair.objects.filter(project=project, gold="", vote_count__gt=project.overlap_target).count(),
        "votes_in_aggregates": sum((a + b + t) * n for a, b, t, n in buckets),
        # The tally histogram leaves gold pairs out: this is what it should count.
        "votes_on_ordinary_pairs": Vote.objects.filter(project=project, pair__gold="").count(),
    }

    if args.skip_scaling:
        print(json.dumps(report, indent=2))
        return
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
