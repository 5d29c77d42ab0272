"""Freshness: from the vote that makes a head due to that head recorded (and live), end to end.

    python bench/head_freshness.py [--repeats 3]                                   # the demo project
    python bench/head_freshness.py --data ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz --pairs 10000

In a fresh APP_DATA_DIR (SQLite, migrated, `bootstrap_demo`) it starts one
real `celery -A config worker` on the fast queue (`default`, where heads
go) and real `celery beat` (the database scheduler: *Retrain heads that
are due* every 5 s), as `make run` does. With --pairs N it builds a project
of N pairs from the file (its rows, repeated with a numbered suffix on the
prompt when the file is shorter), one imported vote each, and fills its
feature cache first (reported apart: freshness is measured "with cached
features").

Each repeat: three annotators cast the project's `head_min_new_votes` (20)
votes through the services, as the labeling page does; the clock starts at
the last of them. It stops when the head run those votes started has been
recorded (its version exists) and when that version is live, if the
promotion gate lets it. Reported: the median of each, and each phase
(waiting for beat, queue, snapshot, embed+fit, publish, predict, compare).

Baseline, in the same run: the head's `train()` called in-process on the
same snapshot with the same cache (warm), no Celery, no database, no
artifacts. The ratio is what the pipeline costs on top.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="pair file for --pairs")
    parser.add_argument("--pairs", type=int, default=0, help="build a project of this many pairs (0: the demo)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11"),
        help="Redis db for the broker; it is emptied.",
    )
    args = parser.parse_args()
    if args.pairs and not args.data:
        parser.error("--pairs needs --data")

    data_dir = tempfile.mkdtemp(prefix="bench-fresh-")
    os.environ.update(
        APP_DATA_DIR=data_dir,
        REDIS_URL=args.redis_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from labeling import services as labeling_services
    from labeling.models import Project
    from rewardmodel import features, services
    from rewardmodel.models import ModelVersion, RetrainPolicy, TrainingRun
    from tests.conftest import make_user
    from tests.rewardmodel.workers import start_beat, start_worker

    call_command("migrate", verbosity=0)
    call_command("bootstrap_demo", stdout=open(os.devnull, "w"))
    if args.pairs:
        project = _big_project(args.data, args.pairs)
        started = time.perf_counter()
        report = features.features_fill(project=project)
        print(
            f"features of {report.stored_sides} sides filled in {time.perf_counter() - started:.0f} s (not timed below)"
        )
    else:
        project = Project.objects.get(slug="demo")
    from django.contrib.auth import get_user_model

    users = [make_user(get_user_model(), f"fresh{i}", "annotator") for i in range(3)]
    project.members.add(*users)
    policy = RetrainPolicy.for_project(project)
    services.retrain_policy_update(project=project, enabled=False)  # heads only: fine-tunes are the GPU's
    need = policy.head_min_new_votes

    logs = Path(data_dir) / "logs"
    from config.runstack import WORKERS

    spec = next(w for w in WORKERS if w.queues == "default")  # the fast worker as `make run` starts it
    worker = start_worker(
        log_dir=logs,
        queues="default",
        redis_url=args.redis_url,
        concurrency=spec.concurrency,
        max_tasks_per_child=spec.max_tasks_per_child,
    )
    beat = start_beat(log_dir=logs, redis_url=args.redis_url)
    rows = []
    try:
        first = _wait(
            lambda: (
                TrainingRun.objects.filter(project=project, kind="head")
                .exclude(status__in=TrainingRun.ACTIVE_STATUSES)
                .first()
            ),
            600,
            "the first head",
        )
        print(f"first head: run {first.pk} {first.status} ({first.error or 'ok'})")
        for i in range(args.repeats):
            cast = 0
            while cast < need:
                assignment = None
                for user in users:  # whoever still has pairs; a new annotator when nobody has
                    assignment = labeling_services.assignment_next(project=project, user=user)
                    if assignment is not None:
                        break
                if assignment is None:
                    user = make_user(get_user_model(), f"fresh{len(users)}", "annotator")
                    project.members.add(user)
                    users.append(user)
                    assignment = labeling_services.assignment_next(project=project, user=user)
                    if assignment is None:
                        raise SystemExit("every pair has all its votes: use fewer --repeats or --pairs N")
                labeling_services.vote_submit(assignment_id=assignment.pk, user=user, choice="left", latency_ms=3000)
                cast += 1
            clock = time.perf_counter()
            voted_at = timezone.now()
            queued = TrainingRun.objects.filter(project=project, kind="head", created_at__gt=voted_at)
            run = _wait(queued.first, 120, "beat to queue the head")
            ended = TrainingRun.objects.filter(pk=run.pk).exclude(status__in=TrainingRun.ACTIVE_STATUSES)
            run = _wait(ended.first, 600, "the head run")
            recorded = time.perf_counter() - clock
            version = ModelVersion.objects.filter(run=run).first()
            live = None
            if version is not None and version.is_active:
                live = (version.promoted_at - voted_at).total_seconds()
            laps = run.metrics.get("pipeline_seconds", {}) if run.metrics else {}
            row = {
                "recorded": recorded,
                "live": live,
                "beat_wait": (run.created_at - voted_at).total_seconds(),
                "queue": (run.started_at - run.created_at).total_seconds() if run.started_at else None,
                **{k: laps.get(k) for k in ("snapshot", "train", "publish", "predict", "compare")},
                "embedded_sides": run.metrics.get("embedded_sides"),
                "held_out": run.metrics.get("held_out_accuracy"),
            }
            rows.append(row)
            print(
                f"  repeat {i + 1}: {run.status}, recorded {recorded:.1f} s after the vote, live "
                f"{'-' if live is None else f'{live:.1f} s'}; "
                + ", ".join(
                    f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float) and k not in ("recorded", "live")
                ),
                flush=True,
            )
    finally:
        beat.kill()
        worker.kill()

    from rewardmodel.run_config import train_config_build
    from rewardmodel.snapshot import training_snapshot_take
    from rewardmodel.training import train

    snapshot = training_snapshot_take(project=project)
    config = train_config_build(kind="head")
    direct = []
    for _ in range(2):
        started = time.perf_counter()
        train(
            config,
            snapshot.train_pairs,
            snapshot.eval_pairs,
            feature_cache=features.project_cache_root(project_id=project.pk),
        )
        direct.append(time.perf_counter() - started)
    lives = [r["live"] for r in rows if r["live"] is not None]
    summary = {
        "project_pairs": project.pairs.count(),
        "repeats": len(rows),
        "median_vote_to_recorded_s": round(statistics.median(r["recorded"] for r in rows), 1),
        "median_vote_to_live_s": round(statistics.median(lives), 1) if lives else None,
        "promoted": f"{len(lives)} of {len(rows)}",
        "median_beat_wait_s": round(statistics.median(r["beat_wait"] for r in rows), 1),
        "median_train_s": round(statistics.median(r["train"] or 0 for r in rows), 1),
        "baseline_train_in_process_s": round(min(direct), 1),
    }
    print(json.dumps(summary))
    return 0


def _wait(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def _big_project(path: str, n: int):
    """A project of `n` pairs from the file's rows, one imported vote each."""
    from labeling import services
    from preferences.formats import RowError, parse_row
    from preferences.readers import source_from_path

    records = []
    for _, row in source_from_path(path):
        try:
            records.append(parse_row(row))
        except RowError:
            continue
    project = services.project_create(slug="big", name="Big", test_percent=20)
    batch, made = [], 0
    while made < n:
        for r in records:
            if made >= n:
                break
            copy = made // len(records)
            prompt = r.prompt if copy == 0 else f"{r.prompt}\n\n(variant {copy})"
            batch.append(type(r)(prompt, r.response_a, r.response_b, r.votes))
            made += 1
            if len(batch) >= 5000:
                services.pairs_import_batch(project=project, records=batch, shuffle_sides=True)
                batch = []
    if batch:
        services.pairs_import_batch(project=project, records=batch, shuffle_sides=True)
    return project


if __name__ == "__main__":
    sys.exit(main())
