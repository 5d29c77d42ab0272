"""Heads against the fine-tune and "longer wins", and how fast they embed and fit. No database.

    python bench/heads.py accuracy ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz [--finetune]
    python bench/heads.py embed ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz [--pairs 300] [--repeats 3]
    python bench/heads.py fit [--sizes 10000,100000,1000000] [--repeats 3]

accuracy: the file's pairs split by prompt as a project splits them (20%
held out); a head (kind='head', its defaults) on cached features, and, with
--finetune, the engine's fine-tune of the same MiniLM on the same split in
the same run; "longer wins" on the same held-out pairs. One JSON line.

embed: pairs per second of the Embedder (length-sorted token-budget
batches, bf16 where native, the unread layer cut) against the naive way in
the same run: fixed batches of 32 in file order, padded to max_length,
every layer, fp32. Medians over --repeats. One JSON line.

fit: seconds to fit a head (ridge by 5-fold CV, w_map, Laplace members)
on synthetic 384-d features of 10k, 100k and 1M pairs, and the cost per
pair. Medians over --repeats. One JSON line per size.

Data is passed by path and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"CUDA {torch.cuda.get_device_name(0)}"
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def load_pairs(path: str):
    """The file's decisive pairs as TrainingPairs, split as a project splits them."""
    from preferences.formats import read_training_pairs
    from preferences.splits import split_for_prompt

    pairs = read_training_pairs(path, skip_invalid=True).pairs
    train = [p for p in pairs if split_for_prompt(p.prompt, 20) == "train"]
    test = [p for p in pairs if split_for_prompt(p.prompt, 20) == "test"]
    return train, test


def accuracy(args) -> None:
    from rewardmodel.training import TrainConfig, train

    train_pairs, test_pairs = load_pairs(args.data)
    cache = ROOT / "bench" / "out" / "features"
    started = time.perf_counter()
    head = train(TrainConfig(kind="head"), train_pairs, test_pairs, feature_cache=cache)
    head_seconds = time.perf_counter() - started
    m = head.metrics
    out = {
        "data": Path(args.data).name,
        "machine": machine(),
        "n_train": len(train_pairs),
        "n_held_out": len(test_pairs),
        "head_accuracy": m["held_out_accuracy"],
        "head_ci": m["held_out_accuracy_ci"],
        "longer_wins": m["length_baseline_accuracy"],
        "head_ridge": m["ridge"],
        "head_seconds_total": round(head_seconds, 1),
        "head_embed_seconds": m["embed_seconds"],
        "head_fit_seconds": m["fit_seconds"],
        "head_embedded_sides": m["embedded_sides"],
    }
    if args.finetune:
        started = time.perf_counter()
        ft = train(TrainConfig(), train_pairs, test_pairs)
        out.update(
            finetune_accuracy=ft.metrics["held_out_accuracy"],
            finetune_ci=ft.metrics["held_out_accuracy_ci"],
            finetune_seconds=round(time.perf_counter() - started, 1),
            finetune_config="TrainConfig() defaults: MiniLM-L6, 2 epochs, lr 1e-4, batch 16, 256 tokens",
        )
    print(json.dumps(out))


def embed(args) -> None:
    import numpy as np
    import torch

    from rewardmodel.training.data import Collator
    from rewardmodel.training.features import Embedder, FeatureSpec

    train_pairs, _ = load_pairs(args.data)
    pairs = train_pairs[: args.pairs]
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    ours = Embedder(FeatureSpec())
    naive = Embedder(FeatureSpec(), bf16=False)
    # The naive way: the whole model (no layer cut), fp32, file order, padded to max_length.
    from transformers import AutoModel

    from rewardmodel.training.model import resolve_backbone

    full = AutoModel.from_pretrained(resolve_backbone(FeatureSpec().backbone)).eval()

    def naive_embed() -> None:
        seqs = naive.encoder.encode(prompts, responses)
        collate = Collator(naive.tokenizer.pad_token_id, 256, 256, torch.device("cpu"))
        with torch.inference_mode():
            for start in range(0, len(prompts), 32):
                rows = list(range(start, min(start + 32, len(prompts))))
                inputs = collate(seqs, rows).inputs
                hidden = full(**inputs, output_hidden_states=True).hidden_states[-2]
                _ = (hidden * inputs["attention_mask"][..., None]).sum(1)

    def ours_embed() -> None:
        ours.embed(prompts, responses)

    ours_embed()  # warm-up: allocator, oneDNN kernels
    timings = {"ours": [], "naive": []}
    for _ in range(args.repeats):
        for name, fn in (("naive", naive_embed), ("ours", ours_embed)):  # interleaved, so drift hits both
            started = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - started)
    med = {k: statistics.median(v) for k, v in timings.items()}
    print(
        json.dumps(
            {
                "data": Path(args.data).name,
                "machine": machine(),
                "pairs": len(pairs),
                "max_length": 256,
                "bf16": ours.bf16,
                "layers_run": ours.model.config.num_hidden_layers,
                "pairs_per_second": round(len(pairs) / med["ours"], 1),
                "naive_pairs_per_second": round(len(pairs) / med["naive"], 1),
                "speedup": round(med["naive"] / med["ours"], 2),
                "runs": {k: [round(x, 2) for x in v] for k, v in timings.items()},
                "mean_tokens_per_side": round(
                    float(np.mean([len(x) for x in ours.encoder.encode(prompts, responses).input_ids])), 1
                ),
            }
        )
    )


def fit(args) -> None:
    import numpy as np

    from rewardmodel.training.head import fit_head

    rng = np.random.default_rng(0)
    d = 384
    w_true = rng.normal(size=d) / np.sqrt(d)
    for n in (int(s) for s in args.sizes.split(",")):
        diff = rng.normal(size=(n, d)).astype(np.float32)
        q = (rng.random(n) < 1 / (1 + np.exp(-(diff @ w_true) * 3))).astype(float)
        groups = [str(i // 2) for i in range(n)]
        seconds = []
        for _ in range(args.repeats if n <= 100_000 else 1):
            started = time.perf_counter()
            head, info = fit_head(diff, q, groups)
            seconds.append(time.perf_counter() - started)
        med = statistics.median(seconds)
        print(
            json.dumps(
                {
                    "pairs": n,
                    "dim": d,
                    "machine": machine(),
                    "seconds": round(med, 2),
                    "microseconds_per_pair": round(1e6 * med / n, 2),
                    "runs": [round(s, 2) for s in seconds],
                    "ridge": info["ridge"],
                    "cv_rows": min(n, 50_000),
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("accuracy")
    p.add_argument("data")
    p.add_argument("--finetune", action="store_true", help="also fine-tune MiniLM on the same split (minutes)")
    p = sub.add_parser("embed")
    p.add_argument("data")
    p.add_argument("--pairs", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("fit")
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    {"accuracy": accuracy, "embed": embed, "fit": fit}[args.what](args)


if __name__ == "__main__":
    main()
