"""Command line: train a reward model on JSONL pair files.

    python -m rewardmodel.training --train train.jsonl --eval eval.jsonl --output out/rm

Reads the `trl` and `pairwise` shapes (see formats.py). Progress goes to
stderr; the last line of stdout is the metrics as JSON. Under
`torchrun --nproc-per-node N -m rewardmodel.training ...` it trains with DDP.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from preferences.formats import FORMATS, read_training_pairs

from .config import TrainConfig

# TrainConfig fields with their own flag; --config sets any field.
FLAGS = {
    "backbone": str,
    "epochs": int,
    "max_length": int,
    "batch_size": int,
    "lr": float,
    "seed": int,
    "ensemble": int,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    help_ = TrainConfig.help()
    p = argparse.ArgumentParser(prog="python -m rewardmodel.training", description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="training pairs, JSONL (.gz ok)")
    p.add_argument("--eval", help="held-out pairs, JSONL; without it, eval metrics are null")
    p.add_argument("--output", required=True, help="folder for the model, tokenizer and reward_meta.json")
    p.add_argument("--format", default="auto", choices=FORMATS, help="row shape (default: detect per row)")
    p.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip rows that cannot become a pair (counted on stderr) instead of failing",
    )
    p.add_argument("--config", help="JSON file of TrainConfig fields; the flags below override it")
    for name, kind in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, help=help_[name])
    return p.parse_args(argv)


def load_pairs(path: str | None, fmt: str, skip_invalid: bool) -> list:
    if path is None:
        return []
    result = read_training_pairs(path, fmt, skip_invalid=skip_invalid)
    print(
        f"{path}: {result.rows} rows, {len(result.pairs)} pairs, {result.no_majority} without a majority, "
        f"{len(result.skipped)} skipped",
        file=sys.stderr,
    )
    for line, error in result.skipped[:10]:
        print(f"  line {line}: {error}", file=sys.stderr)
    return result.pairs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    fields = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            fields = json.load(fh)
    for name in FLAGS:
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    config = TrainConfig.from_dict({**fields, "output_dir": args.output})
    train_pairs = load_pairs(args.train, args.format, args.skip_invalid)
    eval_pairs = load_pairs(args.eval, args.format, args.skip_invalid)

    from .trainer import train  # torch and transformers load here, after the arguments are checked

    is_main = os.environ.get("RANK", "0") == "0"

    def show(p) -> None:
        if is_main and (p.phase != "train" or p.step % config.log_interval == 0):
            print(f"[{p.fraction:6.1%}] {p.phase} {p.step}/{p.total} {json.dumps(p.metrics)}", file=sys.stderr)

    result = train(config, train_pairs, eval_pairs, on_progress=show)
    if is_main:
        print(json.dumps(result.metrics))


if __name__ == "__main__":
    main()
