"""Dashboard server time at 10k and 1M votes (10k annotators), against baselines.

For each scale, a fresh database is filled with bulk inserts straight into
the tables (pairs, annotators, votes with K=3 votes per pair), the running
aggregates are built once with `aggregates_rebuild` (as after a migration),
a version with predictions on every held-out pair is activated, and then:

- dashboard: GET /p/<slug>/dashboard/ through Django's test client (server
  time: middleware, queries, statistics with 3x1,000 bootstrap draws,
  template), median of --requests requests after one warm-up;
- metrics: GET /api/v1/projects/<slug>/metrics, likewise;
- trivial baseline: GET /healthz through the same client;
- naive competitor: the same three agreement figures computed from the vote
  table (GROUP BY pair) instead of the running aggregates;
- reliability refit: one fit of the project's label model on every vote
  (dashboard.quality, the beat task's work; 5% of the pairs are gold pairs,
  so the annotator rows' gold-accuracy columns read real rows too).

Each scale runs in its own subprocess with its own database. Usage:

    .venv/bin/python bench/dashboard.py                       # SQLite, 10k and 1M votes
    .venv/bin/python bench/dashboard.py --db postgres         # PostgreSQL at 127.0.0.1:5432
    .venv/bin/python bench/dashboard.py --votes 10000 --requests 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
K = 3


def _median_ms(fn, n: int) -> float:
    fn()  # warm-up: connections, template cache, imports
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _fill(votes: int, annotators: int, seed: int = 0) -> dict:
    """Bulk-insert one project's pairs, annotators and votes; returns timings."""
    import random

    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts import roles
    from labeling import services
    from labeling.models import Annotator, Pair, Vote

    rng = random.Random(seed)
    now = timezone.now()
    project = services.project_create(slug="bench", name="Bench", overlap_target=K)
    t0 = time.perf_counter()
    n_pairs = votes // K
    with transaction.atomic():
        Annotator.objects.bulk_create([Annotator(external_id=f"bench-{i}") for i in range(annotators)], batch_size=5000)
        annotator_ids = list(Annotator.objects.order_by("pk").values_list("pk", flat=True))
        lefty = set(rng.sample(annotator_ids, max(1, annotators // 20)))
        pair_rows, vote_rows = [], []
        for i in range(n_pairs):
            truth = rng.choice("ab")
            voters = rng.sample(annotator_ids, K)
            choices = [truth if rng.random() < 0.75 else rng.choice(("a", "b", "tie")) for _ in voters]
            split = "test" if i % 5 == 0 else "train"
            len_a, len_b = 40 + (i * 7) % 300, 40 + (i * 13) % 300
            pair_rows.append(
                Pair(
                    project=project,
                    prompt=f"prompt {i}",
                    response_a="a" * len_a,
                    response_b="b" * len_b,
                    content_hash=f"{i:064x}",
                    split=split,
                    rank=rng.getrandbits(60),
                    slots_taken=K,
                    vote_count=K,
                    votes_a=choices.count("a"),
                    votes_b=choices.count("b"),
                    votes_tie=choices.count("tie"),
                )
            )
            vote_rows.append((voters, choices))
        Pair.objects.bulk_create(pair_rows, batch_size=5000)
        pair_ids = list(Pair.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
        table = Vote._meta.db_table
        sql = (
            f"INSERT INTO {table} (project_id, pair_id, annotator_id, choice, shown_left, rationale, "
            f"latency_ms, created_at, in_aggregates) VALUES (%s, %s, %s, %s, %s, '', %s, %s, %s)"
        )
        batch = []
        with connection.cursor() as cursor:
            for pair_id, (voters, choices) in zip(pair_ids, vote_rows):
                for annotator_id, choice in zip(voters, choices):
                    left = rng.choice("ab")
                    if annotator_id in lefty and choice != "tie":
                        choice = left
                    batch.append(
                        (project.pk, pair_id, annotator_id, choice, left, int(rng.lognormvariate(9, 0.6)), now, True)
                    )
                if len(batch) >= 20000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
    fill_s = time.perf_counter() - t0
    roles.roles_sync()
    from django.contrib.auth import get_user_model

    reviewer = get_user_model().objects.create_user("bench-reviewer", password="x")
    reviewer.groups.add(Group.objects.get(name=roles.REVIEWER))
    return {"project": project, "reviewer": reviewer, "fill_s": fill_s, "pairs": n_pairs}


def _activate_version(project) -> float:
    from dashboard.aggregates import on_version_activated
    from labeling.models import Pair
    from rewardmodel.models import ModelVersion, PairPrediction, TrainingRun

    metrics = {
        "held_out_accuracy": 0.71,
        "held_out_accuracy_ci": [0.70, 0.72],
        "train_accuracy": 0.8,
        "eval_loss": 0.6,
        "ece": 0.04,
        "length_baseline_accuracy": 0.55,
        "p_model_prefers_longer": 0.6,
        "p_human_prefers_longer": 0.55,
        "reliability": [
            {
                "bin_lo": 0.5 + i / 20,
                "bin_hi": 0.55 + i / 20,
                "confidence": 0.525 + i / 20,
                "accuracy": 0.5 + i / 20,
                "count": 100,
            }
            for i in range(10)
        ],
        "length_buckets": [{"bucket": "all", "lo": None, "hi": None, "accuracy": 0.7, "count": 1000}],
        "extreme_reward_share": 0.0,
        "swap_max_abs_diff": 0.0,
        "n_train": 1,
        "n_eval": 1,
    }
    versions = []
    for number in (1, 2, 3):
        run = TrainingRun.objects.create(
            project=project, trigger="cli", status="succeeded", n_train_pairs=number * 1000
        )
        versions.append(
            ModelVersion.objects.create(
                project=project, run=run, number=number, artifact_dir="-", metrics=metrics, is_active=number == 3
            )
        )
    test_ids = list(Pair.objects.filter(project=project, split="test").values_list("pk", flat=True))
    PairPrediction.objects.bulk_create(
        [PairPrediction(version=versions[-1], pair_id=pk, margin=1.0 if pk % 3 else -1.0) for pk in test_ids],
        batch_size=5000,
    )
    t = time.perf_counter()
    on_version_activated(version=versions[-1])
    return time.perf_counter() - t


def _naive_agreement(project) -> None:
    """The competitor: tallies from the vote table on every request, then the same statistics."""
    import numpy as np
    from django.db.models import Count, Q

    from labeling.models import Vote
    from preferences import agreement as ag

    rows = (
        Vote.objects.filter(project=project)
        .values("pair_id")
        .annotate(
            a=Count("id", filter=Q(choice="a")),
            b=Count("id", filter=Q(choice="b")),
            t=Count("id", filter=Q(choice__in=("tie", "both_bad"))),
        )
        .values_list("a", "b", "t")
    )
    counts, weights = np.unique(np.array(list(rows), dtype=np.int64).reshape(-1, 3), axis=0, return_counts=True)
    for stat in (ag.percent_agreement, ag.fleiss_kappa, ag.krippendorff_alpha):
        ag.bootstrap_estimate(stat, counts, weights)  # same statistics cost as the dashboard: only the scan differs


def run_one(votes: int, annotators: int, requests: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from dashboard.aggregates import aggregates_rebuild
    from dashboard.quality import reliability_refit
    from labeling.models import Pair

    call_command("migrate", verbosity=0)
    filled = _fill(votes, annotators)
    project = filled["project"]
    gold_ids = list(Pair.objects.filter(project=project).values_list("pk", flat=True)[::20])
    for start in range(0, len(gold_ids), 5000):
        Pair.objects.filter(pk__in=gold_ids[start : start + 5000]).update(gold="a")
    t = time.perf_counter()
    aggregates_rebuild(project=project)
    rebuild_s = time.perf_counter() - t
    activate_s = _activate_version(project)
    client = Client()
    client.force_login(filled["reviewer"])

    def get(url):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)

    result = {
        "db": connection.vendor,
        "votes": votes,
        "pairs": filled["pairs"],
        "annotators": annotators,
        "fill_s": round(filled["fill_s"], 1),
        "rebuild_s": round(rebuild_s, 1),
        "activate_s": round(activate_s, 2),
        "dashboard_ms": _median_ms(lambda: get(f"/p/{project.slug}/dashboard/"), requests),
        "metrics_api_ms": _median_ms(lambda: get(f"/api/v1/projects/{project.slug}/metrics"), requests),
        "healthz_ms": _median_ms(lambda: get("/healthz"), requests),
        "naive_agreement_ms": _median_ms(lambda: _naive_agreement(project), max(3, requests // 3)),
    }
    t = time.perf_counter()
    fit = reliability_refit(project=project)
    result["reliability_refit_s"] = round(time.perf_counter() - t, 2)
    result["reliability_fit_only_s"] = round(fit.seconds, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--annotators", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        print(json.dumps(run_one(args.votes[0], args.annotators, args.requests)))
        return

    results = []
    for votes in args.votes:
        annotators = min(args.annotators, max(10, votes // 10))
        with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
            env = {
                **os.environ,
                "APP_DATA_DIR": tmp,
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
                "LOG_LEVEL": "WARNING",
            }
            env.pop("SQLITE_PATH", None)
            if args.db == "postgres":
                name = f"bench_dashboard_{votes}"
                for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
                    subprocess.run(["psql", args.pg_url + "/postgres", "-qc", sql], check=True)
                env["DATABASE_URL"] = f"{args.pg_url}/{name}"
            else:
                env.pop("DATABASE_URL", None)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    "--votes",
                    str(votes),
                    "--annotators",
                    str(annotators),
                    "--requests",
                    str(args.requests),
                ],
                env=env,
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                sys.exit(f"scale {votes} failed:\n{out.stderr[-4000:]}")
            if args.db == "postgres":
                subprocess.run(["psql", args.pg_url + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        print(json.dumps(result), flush=True)

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        f"{'db':8} {'votes':>9} {'annot.':>7} {'dashboard':>10} {'metrics':>9} {'healthz':>8} "
        f"{'ratio':>6} {'naive agr.':>11} {'rebuild':>8}"
    )
    for r in results:
        print(
            f"{r['db']:8} {r['votes']:>9,} {r['annotators']:>7,} {r['dashboard_ms']:>8.1f}ms "
            f"{r['metrics_api_ms']:>7.1f}ms {r['healthz_ms']:>6.1f}ms {r['dashboard_ms'] / r['healthz_ms']:>5.1f}x "
            f"{r['naive_agreement_ms']:>9.1f}ms {r['rebuild_s']:>7.1f}s"
        )


if __name__ == "__main__":
    main()
