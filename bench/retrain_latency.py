"""Retrain latency: from the admin's "Retrain now" to a promoted version, on the demo project.

    python bench/retrain_latency.py [--preset tiny|default] [--repeats 3] [--threads 0]
                                    [--redis-url redis://127.0.0.1:6379/15]

In a fresh APP_DATA_DIR (SQLite, migrated, `bootstrap_demo`), with one real
`celery -A config worker` (the `make run` flags) on the Redis db given
(EMPTIED first), it presses the button through Django's test client as the
demo admin and polls until the run has ended, `--repeats` times. Each run
is broken down into: queue (click to claim), snapshot (reading the
labels), engine (the whole `train()` call: tokenizer and model load,
the optimizer loop, evaluation, saving), loop (the engine's own
train_seconds, inside engine), publish (checksums, fsync, rename),
predict (held-out predictions, which loads the saved folder once), and
other (the version's transaction, heartbeat and polling granularity).

Baseline, in the same run: the engine's `train()` called directly in this
process on the same snapshot and config (after one warm-up call), with no
Celery, database or artifact handling. The ratio is what the pipeline
costs on top of the training itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("tiny", "default"), default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="RM_TORCH_THREADS (0: torch's default).")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        help="Redis db for the broker; it is emptied.",
    )
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="bench-retrain-")
    os.environ.update(
        APP_DATA_DIR=data_dir,
        REDIS_URL=args.redis_url,
        RM_TRAIN_PRESET=args.preset,
        RM_TORCH_THREADS=str(args.threads),
        DJANGO_SETTINGS_MODULE="config.settings",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from labeling.models import Project
    from rewardmodel.models import TrainingRun
    from rewardmodel.run_config import train_config_build
    from rewardmodel.snapshot import training_snapshot_take
    from tests.rewardmodel.workers import start_worker

    call_command("migrate", verbosity=0)
    call_command("bootstrap_demo", stdout=open(os.devnull, "w"))
    project = Project.objects.get(slug="demo")
    admin = get_user_model().objects.get(username="admin")
    snapshot = training_snapshot_take(project=project)
    print(
        f"demo project: {len(snapshot.train_pairs)} train pairs, {len(snapshot.eval_pairs)} held-out pairs; "
        f"preset {args.preset}; torch threads {args.threads or 'default'}"
    )

    worker = start_worker(log_dir=Path(data_dir) / "logs", redis_url=args.redis_url)
    client = Client()
    client.force_login(admin)
    rows = []
    try:
        for i in range(args.repeats):
            clicked = time.perf_counter()
            response = client.post(reverse("rewardmodel:run-start", args=["demo"]))
            assert response.status_code == 302, response.status_code
            run = TrainingRun.objects.filter(project=project).order_by("-pk").first()
            while True:
                run.refresh_from_db()
                if not run.is_active:
                    break
                time.sleep(0.05)
            total = time.perf_counter() - clicked
            if run.status != "succeeded":
                print(f"run {run.pk} {run.status}: {run.error}\n{worker.log()[-2000:]}")
                return 1
            queue_wait = (run.started_at - run.created_at).total_seconds()
            laps = run.metrics.get("pipeline_seconds", {})
            row = {
                "total": total,
                "queue": queue_wait,
                "engine": laps.get("train", 0.0),
                "loop": run.metrics.get("train_seconds") or 0.0,
                "publish": laps.get("publish", 0.0),
                "predict": laps.get("predict", 0.0),
                "compare": laps.get("compare", 0.0),  # the promotion gate scoring older versions
                "snapshot": laps.get("snapshot", 0.0),
            }
            row["other"] = total - queue_wait - sum(laps.values())
            rows.append(row)
            print(
                f"  run {i + 1}: {total:6.2f} s click-to-{'promoted' if run.promoted else 'not promoted'}: "
                + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k != "total")
                + f"; held-out accuracy {run.metrics.get('held_out_accuracy'):.3f}"
            )
    finally:
        worker.kill()

    from rewardmodel.execution import torch_threads_limit
    from rewardmodel.training import train

    torch_threads_limit()
    direct = []
    for i in range(args.repeats + 1):  # the first call warms up (imports, allocator)
        config = train_config_build(policy_overrides={})
        config.output_dir = tempfile.mkdtemp(dir=data_dir)
        started = time.perf_counter()
        train(config, snapshot.train_pairs, snapshot.eval_pairs)
        if i:
            direct.append(time.perf_counter() - started)

    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    base = statistics.median(direct)
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, no GPU"
        if not _cuda()
        else f"\nmachine: CUDA {_cuda()}"
    )
    print(
        f"median click-to-promoted: {med['total']:.2f} s ("
        + ", ".join(f"{k} {v:.2f}" for k, v in med.items() if k != "total")
        + ")"
    )
    print(f"median baseline train() in-process: {base:.2f} s")
    print(f"ratio pipeline / baseline: {med['total'] / base:.2f}x")
    return 0


def _cuda() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""


if __name__ == "__main__":
    sys.exit(main())
