"""python manage.py simulate_labeling --data PATH [--data PATH ...] --strategies random,uncertainty,...

Replays labelled files as if annotators answered with their labels, and
retrains the head after each batch (rewardmodel.training.simulate): no
database, no worker. Several --data files form one pool, as several imports
into one project would. The pool is split by prompt as a project splits it.

Prints learning curves (held-out accuracy against labels, mean and 95% CI
over seeds) and, last, one JSON line:

    {"strategies": {NAME: {"curve": [[labels, acc, lo, hi], ...]}},
     "labels_to_match_random": {NAME: share}, "labels_to_match_random_ci": {NAME: [lo, hi]}, ...}

where a share is the labels a strategy needs to reach random's accuracy at
the full budget, over the budget (None: it never does). `--plot out.png`
draws the curves.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from preferences.formats import RowError, parse_row
from preferences.readers import ReadError, source_from_path
from rewardmodel.run_config import train_config_build
from rewardmodel.training.acquisition import STRATEGIES


class Command(BaseCommand):
    help = "Compare acquisition strategies by replaying labelled files (no database needed)."
    requires_system_checks = []  # no database, no models: runs anywhere the code does

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", action="append", required=True, help="A labelled file (any import shape).")
        parser.add_argument("--strategies", default=",".join(STRATEGIES), help="Comma-separated; random is added.")
        parser.add_argument("--seed-labels", type=int, default=64, help="Random labels every strategy starts from.")
        parser.add_argument("--batch", type=int, default=64, help="Labels per round, between retrains.")
        parser.add_argument("--budget", type=int, default=1024, help="Labels at the end.")
        parser.add_argument("--seeds", type=int, default=5)
        parser.add_argument("--exploration", type=float, default=0.1, help="Share of each batch picked at random.")
        parser.add_argument("--test-percent", type=int, default=20, help="Held-out share of prompts.")
        parser.add_argument("--config", help="JSON object of TrainConfig fields (backbone, feature_layer, ...).")
        parser.add_argument("--cache", help="Feature cache folder (default: FEATURE_CACHE_DIR/files).")
        parser.add_argument("--plot", help="Also draw the curves to this PNG file.")

    def handle(self, *args, **o) -> None:
        # The engine loads torch: imported here, so `manage.py help` stays light.
        from rewardmodel.training.features import Embedder, pair_features
        from rewardmodel.training.head_trainer import feature_store_for
        from rewardmodel.training.simulate import Pool, run_curve, sim_pairs, summarise

        strategies = [s.strip() for s in o["strategies"].split(",") if s.strip()]
        unknown = sorted(set(strategies) - set(STRATEGIES))
        if unknown:
            raise CommandError(f"unknown strategies: {', '.join(unknown)}; expected {', '.join(STRATEGIES)}")
        if "random" not in strategies:
            strategies.insert(0, "random")
        if not 0 < o["seed_labels"] <= o["budget"] or o["batch"] < 1 or o["seeds"] < 1:
            raise CommandError("need 0 < --seed-labels <= --budget, --batch >= 1 and --seeds >= 1")
        try:
            overrides = json.loads(o["config"]) if o["config"] else {}
            config = train_config_build(policy_overrides=overrides, kind="head")
        except (ValueError, TypeError) as exc:
            raise CommandError(f"--config: {exc}") from None

        records, skipped = [], 0
        for path in o["data"]:
            try:
                for _, row in source_from_path(path):
                    if isinstance(row, RowError):
                        skipped += 1
                        continue
                    try:
                        records.append(parse_row(row))
                    except RowError:
                        skipped += 1
            except ReadError as exc:
                raise CommandError(exc.message) from None
        pairs = sim_pairs(records)
        self.stderr.write(
            f"{len(pairs)} labelled pairs ({skipped} rows skipped, "
            f"{len(records) - len(pairs)} without a decisive label)"
        )

        started = time.perf_counter()
        embedder = Embedder(config.feature_spec(), bf16=config.bf16, batch_tokens=config.embed_batch_tokens)
        store = feature_store_for(embedder, Path(o["cache"]) if o["cache"] else settings.FEATURE_CACHE_DIR / "files")
        features_a, features_b = pair_features(
            [p.prompt for p in pairs],
            [p.response_a for p in pairs],
            [p.response_b for p in pairs],
            embedder=embedder,
            store=store,
            on_progress=lambda done, total: self._progress(f"embedding {done}/{total} sides"),
        )
        self.stderr.write(
            f"\nfeatures ready in {time.perf_counter() - started:.1f} s "
            f"({embedder.sides} sides embedded, the rest cached)"
        )
        pool = Pool.build(pairs, features_a, features_b, test_percent=o["test_percent"])
        if len(pool.train) < o["seed_labels"] or not len(pool.test):
            raise CommandError(f"too few pairs: {len(pool.train)} to label and {len(pool.test)} held out")
        budget = min(o["budget"], len(pool.train))

        curves: dict[str, list] = {name: [] for name in strategies}
        for seed in range(o["seeds"]):
            for name in strategies:
                t = time.perf_counter()
                curves[name].append(
                    run_curve(
                        pool,
                        name,
                        seed=seed,
                        seed_labels=o["seed_labels"],
                        batch=o["batch"],
                        budget=budget,
                        exploration=o["exploration"],
                        members=config.head_members,
                    )
                )
                self.stderr.write(
                    f"seed {seed} {name}: {curves[name][-1][-1][1]:.3f} at {budget} labels "
                    f"({time.perf_counter() - t:.1f} s)"
                )
        summary = summarise(curves, budget)
        summary.update(
            {
                "pairs": len(pairs),
                "train_pool": int(len(pool.train)),
                "held_out": int(len(pool.test)),
                "budget": budget,
                "seeds": o["seeds"],
                "batch": o["batch"],
                "exploration": o["exploration"],
                "feature_key": embedder.key,
            }
        )
        self._table(summary)
        if o["plot"]:
            plot_curves(summary, o["plot"], title=", ".join(Path(p).name for p in o["data"]))
        self.stdout.write(json.dumps(summary))

    def _progress(self, text: str) -> None:
        self.stderr.write(f"\r{text}", ending="")
        sys.stderr.flush()

    def _table(self, summary: dict) -> None:
        names = list(summary["strategies"])
        self.stdout.write("labels  " + "  ".join(f"{n:>24}" for n in names))
        rows = zip(*(summary["strategies"][n]["curve"] for n in names))
        for points in rows:
            cells = "  ".join(f"{acc:.3f} [{lo:.3f}, {hi:.3f}]".rjust(24) for _, acc, lo, hi in points)
            self.stdout.write(f"{points[0][0]:>6}  {cells}")
        for n in names:
            share = summary["labels_to_match_random"].get(n)
            ci = summary["labels_to_match_random_ci"].get(n)
            self.stdout.write(
                f"{n}: labels to match random at {summary['budget']} = "
                f"{'never' if share is None else f'{share:.0%}'} (95% CI {ci})"
            )


def plot_curves(summary: dict, path: str, *, title: str = "") -> None:
    """Learning curves with their 95% bands, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, data in summary["strategies"].items():
        curve = data["curve"]
        labels = [c[0] for c in curve]
        ax.plot(labels, [c[1] for c in curve], marker="o", markersize=3, label=name)
        ax.fill_between(labels, [c[2] for c in curve], [c[3] for c in curve], alpha=0.15)
    ax.set_xlabel("labels")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"{title} ({summary['seeds']} seeds, 95% CI)" if title else f"{summary['seeds']} seeds, 95% CI")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
