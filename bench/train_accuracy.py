"""Held-out accuracy of the training engine on real preference data.

Splits a pair file 80/20 by prompt (no prompt on both sides), trains with
the engine, and prints one JSON line: accuracy with its bootstrap 95% CI,
next to chance (0.5) and the "longer response wins" baseline.

    python bench/train_accuracy.py ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz \
        --epochs 2 --lr 3e-5 --max-length 256 --out bench/out/accuracy.json

Data is passed by path and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from preferences.formats import read_training_pairs
from rewardmodel.training import TrainConfig, train
from rewardmodel.training.data import split_by_prompt

KEYS = (
    "held_out_accuracy",
    "held_out_accuracy_ci",
    "eval_loss",
    "train_accuracy",
    "length_baseline_accuracy",
    "p_model_prefers_longer",
    "p_human_prefers_longer",
    "ece",
    "reward_mean",
    "reward_std",
    "extreme_reward_share",
    "swap_max_abs_diff",
    "ensemble_disagreement",
    "member_accuracies",
    "length_buckets",
    "truncated_pairs",
    "eval_truncated_pairs",
    "pad_fraction",
    "pairs_per_second",
    "epochs_run",
    "n_train",
    "n_eval",
    "device",
    "bf16",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="pair file (trl or pairwise JSONL), e.g. hh-rlhf-harmless-base-test.jsonl.gz")
    ap.add_argument("--eval-fraction", type=float, default=0.2)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--config", help="JSON file of TrainConfig fields; the flags below override it")
    for name, kind in (
        ("epochs", int),
        ("lr", float),
        ("max_length", int),
        ("batch_size", int),
        ("seed", int),
        ("ensemble", int),
        ("warmup_ratio", float),
        ("weight_decay", float),
        ("early_stopping_patience", int),
        ("backbone", str),
    ):
        ap.add_argument("--" + name.replace("_", "-"), dest=name, type=kind)
    ap.add_argument("--out", help="also write the JSON result here")
    args = ap.parse_args()

    fields = json.loads(Path(args.config).read_text()) if args.config else {}
    fields.update({k: v for k, v in vars(args).items() if v is not None and k in TrainConfig.help()})
    config = TrainConfig.from_dict(fields)
    pairs = read_training_pairs(args.data, skip_invalid=True).pairs
    train_pairs, eval_pairs = split_by_prompt(pairs, args.eval_fraction, args.split_seed)

    def show(p) -> None:
        if p.phase != "train" or p.step % config.log_interval == 0:
            print(
                f"[{time.perf_counter() - start:7.1f}s {p.fraction:6.1%}] {p.phase} {p.step}/{p.total} "
                f"{json.dumps(p.metrics)}",
                file=sys.stderr,
                flush=True,
            )

    start = time.perf_counter()
    metrics = train(config, train_pairs, eval_pairs, on_progress=show).metrics
    result = {
        "data": Path(args.data).name,
        "split": f"{1 - args.eval_fraction:.0%}/{args.eval_fraction:.0%} by prompt, seed {args.split_seed}",
        "config": config.to_dict(),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs",
        **{k: metrics.get(k) for k in KEYS},
    }
    line = json.dumps(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
