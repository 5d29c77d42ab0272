"""Label quality: do the label models catch bad annotators, do their labels train a better model, how fast do they fit?

    .venv/bin/python -m bench.label_quality --pandalm ../shared/data/pandalm-testset-v1.json \\
        --hh ../shared/data/hh-rlhf-harmless-base-test.jsonl.gz [--seeds 5] [--parts detection,recovery,cost]

Data (passed by path, never copied into the repository):

- PandaLM: 3 real annotators per pair. The truth is their label-rule
  majority; pairs whose majority is a tie or split are left out. A good
  simulated annotator's vote on a pair is one of the three real annotators'
  votes on it, drawn at random (so real disagreement and real ties).
- HH-RLHF: one label per pair, taken as the truth. A good annotator is a
  noisy copy of it, right with a probability drawn per annotator from
  U(0.85, 0.90).

Bad annotators, in equal numbers: a random clicker (a or b, uniformly);
always-left (the sides are shuffled per serving, as the product does, so in
pair terms a coin flip); always-longer (the longer response in characters);
careless (right 70% of the time). They cast 20% and then 40% of the votes.

Each annotator casts 50 votes (49 or 50: the slack of an even spread), 3
votes per pair, on the training side of the prompt split
(`preferences.splits`, 20% held out); 5% of the training pairs are gold
pairs (their answer the truth), as a project's default gold rate.

Parts:

- detection: precision and recall of `reliability_flagged` on the bad
  annotators, per label model, and a sweep of the threshold.
- recovery: the fast head (MiniLM-L6 features, cached under
  bench/out/features; `head.fit_head` with its defaults, the ridge chosen
  by CV on the clean labels and then held for the noisy ones of that seed, so
  the labels are the only difference) trained on the
  non-gold training pairs labelled (i) by the truth, (ii) by the majority of
  the noisy votes (hard), (iii) by each crowd model (soft, p_chosen), and
  scored against the truth on the held-out pairs. Recovery =
  (acc_model - acc_majority) / (acc_clean - acc_majority), per seed and of
  the medians; and the same fraction for the training labels themselves
  (label recovery: of the labels majority gets wrong, the share the model
  gets right).
- cost: the refit time of each model at 100k votes (synthetic: 33,334 pairs,
  2,000 annotators, 20% bad), the majority tally in the same run.

Figures are medians over --seeds, with [min, max] over seeds. JSON lines on
stdout, also written to bench/out/label_quality.jsonl.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from preferences.label_models import LABEL_MODELS, LabelVote, label_model_fit, reliability_flagged  # noqa: E402
from preferences.labels import Tally  # noqa: E402
from preferences.splits import split_for_prompt  # noqa: E402

VOTES_EACH = 50
PER_PAIR = 3
GOLD_RATE = 0.05
BAD_KINDS = ("random", "always_left", "always_longer", "careless")
CROWD = ("dawid_skene", "mace", "glad")


@dataclass
class Item:
    prompt: str
    chosen: str  # the truth's better response
    rejected: str
    real_votes: tuple[str, ...] = ()  # PandaLM: the real annotators' votes, "c" (chosen), "r" or "tie"


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f}"


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
def load_pandalm(path: str) -> list[Item]:
    from preferences.formats import parse_row

    items = []
    for row in json.loads(Path(path).read_text(encoding="utf-8")):
        try:
            record = parse_row(row, "pandalm")
        except ValueError:
            continue  # a few rows are not comparable pairs (a response that is not text)
        winner = Tally.of(v.choice for v in record.votes).winner
        if winner is None:
            continue
        chosen, rejected = (
            (record.response_a, record.response_b) if winner == "a" else (record.response_b, record.response_a)
        )
        real = tuple("tie" if v.choice == "tie" else "c" if v.choice == winner else "r" for v in record.votes)
        items.append(Item(record.prompt, chosen, rejected, real))
    return items


def load_hh(path: str) -> list[Item]:
    from preferences.formats import parse_row

    items = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            try:
                record = parse_row(json.loads(line), "trl")
            except ValueError:
                continue  # two rows have chosen == rejected
            items.append(Item(record.prompt, record.response_a, record.response_b))
    return items


# --------------------------------------------------------------------------- #
# Simulation
# --------------------------------------------------------------------------- #
@dataclass
class Crowd:
    votes: list[LabelVote]  # pair ids index `items`; choices in pair terms
    a_is_chosen: list[bool]  # per item: is response_a the truth's better side
    kinds: dict[str, str]  # annotator -> "good" or a bad kind
    gold: dict[int, str]  # item index -> answer in pair terms


def simulate(items: list[Item], train_idx: list[int], bad_fraction: float, seed: int) -> Crowd:
    rng = random.Random(seed)
    a_is_chosen = [rng.random() < 0.5 for _ in items]
    n_annotators = math.ceil(len(train_idx) * PER_PAIR / VOTES_EACH)
    n_bad = round(bad_fraction * n_annotators)
    kinds = {f"bad{i}": BAD_KINDS[i % len(BAD_KINDS)] for i in range(n_bad)}
    kinds |= {f"good{i}": "good" for i in range(n_annotators - n_bad)}
    skill = {name: rng.uniform(0.85, 0.90) for name in kinds}
    names = list(kinds)
    rng.shuffle(names)
    left = dict.fromkeys(names, VOTES_EACH)

    def side(i: int, better: bool) -> str:
        return "a" if better == a_is_chosen[i] else "b"

    def vote(i: int, who: str) -> str:
        item, kind = items[i], kinds[who]
        if kind == "good":
            if item.real_votes:
                real = rng.choice(item.real_votes)
                return "tie" if real == "tie" else side(i, real == "c")
            return side(i, rng.random() < skill[who])
        if kind in ("random", "always_left"):  # left is a coin flip per serving, in pair terms a random side
            return rng.choice("ab")
        if kind == "always_longer":
            return side(i, len(item.chosen) >= len(item.rejected))
        return side(i, rng.random() < 0.7)  # careless

    order = list(train_idx)
    rng.shuffle(order)
    votes = []
    for i in order:
        # the annotators with the most votes left, random among equals: everyone ends with 49 or 50
        tiebreak = {n: rng.random() for n in names}
        for who in sorted(names, key=lambda n: (-left[n], tiebreak[n]))[:PER_PAIR]:
            left[who] -= 1
            votes.append(LabelVote(i, who, vote(i, who)))
    gold_items = rng.sample(train_idx, round(GOLD_RATE * len(train_idx)))
    gold = {i: side(i, True) for i in gold_items}
    return Crowd(votes, a_is_chosen, kinds, gold)


def split(items: list[Item]) -> tuple[list[int], list[int]]:
    train = [i for i, it in enumerate(items) if split_for_prompt(it.prompt, 20) == "train"]
    test = [i for i, it in enumerate(items) if split_for_prompt(it.prompt, 20) == "test"]
    return train, test


def summary(values: list[float]) -> dict:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


# --------------------------------------------------------------------------- #
# (a) detection
# --------------------------------------------------------------------------- #
def detection(name: str, items: list[Item], seeds: int, emit: Callable[[dict], None]) -> None:
    train_idx, _ = split(items)
    for bad_fraction in (0.2, 0.4):
        per_model: dict[str, dict[str, list]] = {m: {"precision": [], "recall": [], "sweep": []} for m in LABEL_MODELS}
        for seed in range(seeds):
            crowd = simulate(items, train_idx, bad_fraction, seed)
            for model in LABEL_MODELS:
                fit = label_model_fit(crowd.votes, model=model, gold=crowd.gold)
                bad = {a for a, k in crowd.kinds.items() if k != "good"}
                flagged = {
                    a
                    for a in crowd.kinds
                    if reliability_flagged(
                        reliability=fit.reliability.get(a), decisive_votes=fit.decisive_votes.get(a, 0)
                    )
                }
                tp = len(flagged & bad)
                per_model[model]["precision"].append(tp / len(flagged) if flagged else float("nan"))
                per_model[model]["recall"].append(tp / len(bad))
                per_model[model]["sweep"].append(
                    {
                        t: _precision_recall(fit, crowd.kinds, t)
                        for t in (0.65, 0.7, 0.72, 0.74, 0.75, 0.76, 0.78, 0.8, 0.82)
                    }
                )
                by_kind = {
                    k: sum(1 for a in flagged if crowd.kinds[a] == k)
                    / max(1, sum(v == k for v in crowd.kinds.values()))
                    for k in (*BAD_KINDS, "good")
                }
                per_model[model].setdefault("by_kind", []).append(by_kind)
        for model, r in per_model.items():
            sweep = {
                str(t): {
                    "precision": summary([s[t][0] for s in r["sweep"]])["median"],
                    "recall": summary([s[t][1] for s in r["sweep"]])["median"],
                }
                for t in r["sweep"][0]
            }
            emit(
                {
                    "part": "detection",
                    "data": name,
                    "bad_fraction": bad_fraction,
                    "model": model,
                    "annotators": len(crowd.kinds),
                    "precision": summary(r["precision"]),
                    "recall": summary(r["recall"]),
                    "flagged_share_by_kind": {
                        k: round(statistics.median(b[k] for b in r["by_kind"]), 3) for k in r["by_kind"][0]
                    },
                    "threshold_sweep": sweep,
                }
            )


def _precision_recall(fit, kinds: dict[str, str], threshold: float) -> tuple[float, float]:
    bad = {a for a, k in kinds.items() if k != "good"}
    flagged = {a for a in kinds if fit.reliability.get(a) is not None and fit.reliability[a] < threshold}
    tp = len(flagged & bad)
    return (tp / len(flagged) if flagged else float("nan"), tp / len(bad))


# --------------------------------------------------------------------------- #
# (b) recovery
# --------------------------------------------------------------------------- #
def features(items: list[Item]):
    """(chosen, rejected) MiniLM features of every item, from the feature cache."""
    from rewardmodel.training.features import Embedder, FeatureSpec, pair_features
    from rewardmodel.training.head_trainer import feature_store_for

    embedder = Embedder(FeatureSpec())
    store = feature_store_for(embedder, ROOT / "bench" / "out" / "features")
    return pair_features(
        [it.prompt for it in items],
        [it.chosen for it in items],
        [it.rejected for it in items],
        embedder=embedder,
        store=store,
    )


def recovery(name: str, items: list[Item], seeds: int, emit: Callable[[dict], None]) -> None:
    import numpy as np

    from rewardmodel.training.head import RIDGE_GRID, fit_head

    train_idx, test_idx = split(items)
    fc, fr = features(items)
    diff = fc - fr  # chosen minus rejected: q is P(truth's chosen is better)

    def held_out_accuracy(q: np.ndarray, idx: list[int], seed: int, grid) -> tuple[float, float]:
        head, fit = fit_head(diff[idx], q, [items[i].prompt for i in idx], seed=seed, grid=grid)
        margins = head.rewards(fc[test_idx]) - head.rewards(fr[test_idx])
        return float(np.mean(margins > 0)), fit["ridge"]

    for bad_fraction in (0.2, 0.4):
        acc: dict[str, list[float]] = {}
        label_acc: dict[str, list[float]] = {}
        for seed in range(seeds):
            crowd = simulate(items, train_idx, bad_fraction, seed)
            trainable = [i for i in train_idx if i not in crowd.gold]
            clean, ridge = held_out_accuracy(np.ones(len(trainable)), trainable, seed, RIDGE_GRID)
            acc.setdefault("clean", []).append(clean)
            for model in LABEL_MODELS:
                fit = label_model_fit(crowd.votes, model=model, gold=crowd.gold)
                idx = [i for i in trainable if i in fit.p_a]
                # P(truth's chosen is better) from P(response_a is better)
                q = np.array([fit.p_a[i] if crowd.a_is_chosen[i] else 1.0 - fit.p_a[i] for i in idx])
                # the ridge the clean labels chose, for every labelling: the comparison is of labels alone
                acc.setdefault(model, []).append(held_out_accuracy(q, idx, seed, (ridge,))[0])
                label_acc.setdefault(model, []).append(float(np.mean(q > 0.5)))
        out = {
            "part": "recovery",
            "data": name,
            "bad_fraction": bad_fraction,
            "n_train": len(train_idx),
            "n_held_out": len(test_idx),
            "held_out_accuracy": {k: summary(v) for k, v in acc.items()},
            "train_label_accuracy": {k: summary(v) for k, v in label_acc.items()},
        }
        for model in CROWD:
            fractions = [
                (m - j) / (c - j) if c - j > 0 else float("nan")
                for m, j, c in zip(acc[model], acc["majority"], acc["clean"])
            ]
            out[f"recovery_{model}"] = summary(fractions)
            medians = (
                statistics.median(acc[model]),
                statistics.median(acc["majority"]),
                statistics.median(acc["clean"]),
            )
            gap = medians[2] - medians[1]
            out[f"recovery_of_medians_{model}"] = round((medians[0] - medians[1]) / gap, 3) if gap > 0 else None
            # the same fraction for the training labels themselves: of the labels majority gets wrong, how many
            # the model gets right (the clean labels are all right)
            out[f"label_recovery_{model}"] = summary(
                [(m - j) / (1 - j) if j < 1 else float("nan") for m, j in zip(label_acc[model], label_acc["majority"])]
            )
        emit(out)


# --------------------------------------------------------------------------- #
# (c) cost
# --------------------------------------------------------------------------- #
def cost(repeats: int, models: tuple[str, ...], emit: Callable[[dict], None]) -> None:
    rng = random.Random(0)
    n_pairs, n_annotators = 33_334, 2_000
    truth = [rng.choice("ab") for _ in range(n_pairs)]
    accuracy = [0.5 if i < n_annotators // 5 else rng.uniform(0.85, 0.9) for i in range(n_annotators)]
    votes = []
    for p in range(n_pairs):
        for w in rng.sample(range(n_annotators), PER_PAIR):
            right = rng.random() < accuracy[w]
            votes.append(LabelVote(p, w, truth[p] if right else ("b" if truth[p] == "a" else "a")))
    gold = {p: truth[p] for p in range(0, n_pairs, 20)}
    timings: dict[str, list[float]] = {m: [] for m in ("majority", *models)}
    for _ in range(repeats):
        for model in timings:  # interleaved, so the machine's load hits every model alike
            started = time.perf_counter()
            label_model_fit(votes, model=model, gold=gold)
            timings[model].append(time.perf_counter() - started)
    emit(
        {
            "part": "cost",
            "votes": len(votes),
            "pairs": n_pairs,
            "annotators": n_annotators,
            "repeats": repeats,
            "seconds": {m: summary(t) for m, t in timings.items()},
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pandalm", required=True, metavar="PATH")
    parser.add_argument("--hh", required=True, metavar="PATH")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--parts", default="detection,recovery,cost")
    parser.add_argument("--cost-repeats", type=int, default=3)
    parser.add_argument("--cost-models", default="dawid_skene,mace,glad")
    args = parser.parse_args(argv)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "label_quality.jsonl", "a", encoding="utf-8")

    def emit(row: dict) -> None:
        row = {**row, "machine": machine()}
        print(json.dumps(row), flush=True)
        log.write(json.dumps(row) + "\n")
        log.flush()

    parts = args.parts.split(",")
    data = {"pandalm": load_pandalm(args.pandalm), "hh-harmless": load_hh(args.hh)}
    if "detection" in parts:
        for name, items in data.items():
            detection(name, items, args.seeds, emit)
    if "recovery" in parts:
        for name, items in data.items():
            recovery(name, items, args.seeds, emit)
    if "cost" in parts:
        cost(args.cost_repeats, tuple(args.cost_models.split(",")), emit)
    log.close()


if __name__ == "__main__":
    main()
