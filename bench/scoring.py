"""Scoring throughput: the scoring API and its scorer against a naive one-at-a-time loop.

    python bench/scoring.py [--data /work/shared/data/hh-rlhf-helpful-base-test.jsonl.gz]
                            [--items 256] [--request-items 64] [--repeats 5] [--threads 0]

Model: the default backbone (all-MiniLM-L6-v2 with a reward head), trained
for one short epoch so the folder is a real saved version (speed does not
depend on the weights). Items: (prompt, chosen response) pairs from the
HH-RLHF file given, or synthetic text when it is absent.

Measured, items per second, median of --repeats passes over the same items
(the three take turns, so a change in the machine's load hits them alike):

1. naive: what a user would write first with transformers: load the saved
   folder with AutoModelForSequenceClassification, then for each item
   tokenizer(prompt, response, truncation=True) and one forward pass;
2. scorer: rewardmodel.training.RewardScorer.score (batched, length-sorted);
3. api: POST /api/v1/projects/{slug}/score through Django's full stack
   (bearer token, one cheap active-version query, cached model), in
   requests of --request-items items, in this process (no network).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "hh-rlhf-helpful-base-test.jsonl.gz"


def load_items(path: Path, n: int) -> tuple[list[str], list[str], str]:
    from preferences.formats import RowError, iter_jsonl, parse_row

    if not path.exists():
        prompts = [f"Question {i}: how do I keep a sourdough starter alive?" for i in range(n)]
        responses = [("Feed it flour and water daily and keep it warm. " * (1 + i % 8)).strip() for i in range(n)]
        return prompts, responses, "synthetic text"
    prompts, responses = [], []
    for _, row in iter_jsonl(path):
        try:
            record = parse_row(row, "trl")
        except RowError:
            continue
        prompts.append(record.prompt)
        responses.append(record.response_a)
        if len(prompts) == n:
            break
    return prompts, responses, path.name


def rates(fns: dict, n_items: int, repeats: int) -> dict[str, float]:
    """Items/s of each contender: median of `repeats` passes, taken in turn (a, b, c, a, b, c, ...)
    so that a change in the machine's load hits them alike."""
    for fn in fns.values():
        fn()  # warm-up: first-call costs are not throughput
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: n_items / statistics.median(t) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--request-items", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="bench-scoring-")
    os.environ.update(
        APP_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="config.settings",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        LOG_LEVEL="WARNING",
        RM_TORCH_THREADS=str(args.threads),
        RM_SCORE_MAX_ITEMS=str(max(args.items, args.request_items)),
    )
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    import torch
    from django.core.management import call_command
    from django.test import Client
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from accounts import roles
    from accounts import services as account_services
    from labeling import services as labeling_services
    from preferences.records import TrainingPair
    from rewardmodel import artifacts
    from rewardmodel.models import ModelVersion, TrainingRun
    from rewardmodel.training import RewardScorer, TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    prompts, responses, source = load_items(args.data, args.items)
    n = len(prompts)

    # A real saved version of the default backbone.
    folder = Path(data_dir) / "model"
    pairs = [
        TrainingPair(p, r, r[: max(1, len(r) // 3)], None, str(i)) for i, (p, r) in enumerate(zip(prompts, responses))
    ]
    train(TrainConfig(epochs=1, output_dir=str(folder), max_length=256), pairs[:32], pairs[32:48])
    max_length = json.loads((folder / "reward_meta.json").read_text())["config"]["max_length"]

    # 1. naive loop
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()

    def naive():
        with torch.inference_mode():
            for p, r in zip(prompts, responses):
                _ = model(**tokenizer(p, r, truncation=True, max_length=max_length, return_tensors="pt")).logits

    # 2. the batched scorer
    scorer = RewardScorer.load(folder, device="cpu")

    def batched():
        scorer.score(prompts, responses, batch_size=32)

    # 3. the API, through Django
    call_command("migrate", verbosity=0)
    roles.roles_sync()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("bench-admin", password="x")
    user.groups.add(Group.objects.get(name=roles.ADMIN))
    project = labeling_services.project_create(slug="bench")
    run = TrainingRun.objects.create(project=project, trigger="cli", status="succeeded")
    ModelVersion.objects.create(
        project=project,
        run=run,
        number=1,
        artifact_dir=str(folder),
        is_active=True,
        checksums=artifacts.checksums_compute(folder=folder),
        metrics={},
    )
    _, raw = account_services.api_token_issue(user=user, name="bench")
    client = Client()
    bodies = [
        json.dumps(
            {
                "items": [
                    {"prompt": p, "response": r}
                    for p, r in zip(prompts[i : i + args.request_items], responses[i : i + args.request_items])
                ]
            }
        )
        for i in range(0, n, args.request_items)
    ]

    def api():
        for body in bodies:
            response = client.post(
                "/api/v1/projects/bench/score",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {raw}",
            )
            assert response.status_code == 200, response.content[:300]

    results = rates({"naive": naive, "scorer": batched, "api": api}, n, args.repeats)
    print(
        f"\n{n} items from {source}; max_length {max_length}; torch threads {torch.get_num_threads()}; "
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only'}"
    )
    for name, value in results.items():
        print(f"  {name:7s} {value:8.1f} items/s (median of {args.repeats})  x{value / results['naive']:.2f} vs naive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
