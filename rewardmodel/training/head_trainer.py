"""Train a linear Bradley-Terry head (kind='head') on frozen features, top to bottom.

    features (cached: only unseen sides are embedded) -> ridge by CV -> w_map
    and posterior members -> the same metrics as a fine-tune -> a folder

The folder holds `head.safetensors` (the weights and the members), the
tokenizer, and `reward_meta.json` with `kind: "head"` and the feature spec:
everything `scoring.RewardScorer` (and plain transformers, see
docs/training.md) needs to score new responses.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from preferences.records import TrainingPair

from . import features
from .config import TrainConfig
from .data import EncodedPairs, fingerprint
from .evaluate import accuracy, disagreement_summary, ensemble_margins, finite, pair_metrics
from .features import Embedder, FeatureStore
from .head import fit_head
from .model import write_meta


def feature_store_for(embedder: Embedder, cache_root: str | Path | None) -> FeatureStore | None:
    """The store under `cache_root` for the embedder's spec key (None: no caching)."""
    if cache_root is None:
        return None
    return FeatureStore(
        Path(cache_root) / embedder.key,
        spec={**embedder.spec.to_dict(), "input_format": embedder.input_format},
        dim=embedder.dim,
    )


def pair_features(
    pairs: Sequence[TrainingPair], embedder: Embedder, store: FeatureStore | None, on_progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """(chosen, rejected) features of the pairs, in order."""
    return features.pair_features(
        [p.prompt for p in pairs],
        [p.chosen for p in pairs],
        [p.rejected for p in pairs],
        embedder=embedder,
        store=store,
        on_progress=on_progress,
    )


def soft_labels(pairs: Sequence[TrainingPair]) -> np.ndarray:
    """P(chosen is better) per pair: 1 unless the pair carries a soft label."""
    return np.array([1.0 if p.p_chosen is None else float(p.p_chosen) for p in pairs])


def train_head(
    config: TrainConfig,
    train_pairs: Sequence[TrainingPair],
    eval_pairs: Sequence[TrainingPair],
    report,
    feature_cache: str | Path | None = None,
):
    """Fit a head; returns a `trainer.TrainResult`. `report` is the trainer's Reporter."""
    from .trainer import TrainResult

    started = time.perf_counter()
    report("embed", 0, 1)
    embedder = Embedder(
        config.feature_spec(),
        device=config.device,
        bf16=config.bf16,
        batch_tokens=config.embed_batch_tokens,
    )
    store = feature_store_for(embedder, feature_cache)

    def embedding(done: int, total: int) -> None:
        report.fraction = 0.8 * done / total if total else 0.8  # embedding is most of a head's time
        report("embed", done, total)

    chosen, rejected = pair_features([*train_pairs, *eval_pairs], embedder, store, on_progress=embedding)
    n = len(train_pairs)
    train_c, train_r, eval_c, eval_r = chosen[:n], rejected[:n], chosen[n:], rejected[n:]
    embed_seconds = time.perf_counter() - started

    report.fraction = 0.8
    report("fit", 0, 1)
    fit_started = time.perf_counter()
    q = soft_labels(train_pairs)
    head, fit = fit_head(
        train_c - train_r,
        q,
        [p.prompt for p in train_pairs],
        members=config.head_members,
        folds=config.head_cv_folds,
        seed=config.seed,
    )
    fit_seconds = time.perf_counter() - fit_started
    report.fraction = 0.95
    report("fit", 1, 1)

    report("eval", 0, 1)
    eval_chosen, eval_rejected = head.rewards(eval_c), head.rewards(eval_r)
    member_margins = head.member_margins(eval_c - eval_r)
    _, spread = ensemble_margins(member_margins) if len(member_margins) > 1 else (None, None)
    sample = sorted(
        random.Random(config.seed).sample(range(len(train_pairs)), min(config.train_eval_pairs, len(train_pairs)))
    )
    train_margins = head.rewards(train_c[sample]) - head.rewards(train_r[sample])
    # Lengths and truncation as a fine-tune reports them: the same encoding of both sides.
    eval_encoded = EncodedPairs.build(embedder.encoder, eval_pairs, [0.0] * len(eval_pairs))
    chosen_tokens, rejected_tokens = eval_encoded.response_tokens()
    eval_truncated = eval_encoded.truncated_pairs
    train_truncated = EncodedPairs.build(embedder.encoder, train_pairs, [0.0] * len(train_pairs)).truncated_pairs
    metrics = {
        **pair_metrics(eval_chosen, eval_rejected, chosen_tokens, rejected_tokens, seed=config.seed),
        **disagreement_summary(member_margins, spread),
        "member_accuracies": [accuracy(m) for m in member_margins],
        "train_accuracy": accuracy(train_margins),
        # Each side is embedded on its own and scored by a dot product: a
        # side's reward cannot depend on the other side, exactly.
        "swap_max_abs_diff": 0.0,
        "kind": "head",
        "ridge": fit["ridge"],
        "cv_log_loss": fit["cv_log_loss"],
        "embed_seconds": finite(embed_seconds),
        "fit_seconds": finite(fit_seconds),
        "train_seconds": finite(time.perf_counter() - started),
        "cached_sides": len(store) if store is not None else 0,
        "embedded_sides": embedder.sides,
        # Throughput of the embedding this run did (None when every side was cached).
        "pairs_per_second": finite(embedder.sides / 2 / embedder.seconds) if embedder.sides else None,
        "tokens_per_second": finite(embedder.real_tokens / embedder.seconds) if embedder.sides else None,
        "pad_fraction": finite(1 - embedder.real_tokens / embedder.padded_tokens) if embedder.padded_tokens else None,
        "truncated_pairs": train_truncated,
        "eval_truncated_pairs": eval_truncated,
        "epochs_run": None,  # a head is solved, not trained for epochs
        "n_train": len(train_pairs),
        "n_eval": len(eval_pairs),
        "ensemble": config.head_members,
        "device": str(embedder.device),
        "bf16": embedder.bf16,
    }

    if config.output_dir:
        report("save", 0, 1)
        folder = Path(config.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        head.save(folder)
        embedder.tokenizer.save_pretrained(folder)
        rewards = np.concatenate(
            [eval_chosen, eval_rejected]
            if len(eval_pairs)
            else [head.rewards(train_c[sample]), head.rewards(train_r[sample])]
        )
        write_meta(
            folder,
            {
                "kind": "head",
                "config": config.to_dict(),
                "feature_spec": embedder.spec.to_dict(),
                "feature_key": embedder.key,
                "input_format": embedder.input_format,
                "train_data_sha256": fingerprint(train_pairs),
                "eval_data_sha256": fingerprint(eval_pairs),
                "reward_mean": finite(rewards.mean()) if len(rewards) else None,
                "reward_std": finite(rewards.std()) if len(rewards) else None,
                "normalization_source": "eval" if len(eval_pairs) else "train_sample",
                "members": [{"path": "head.safetensors", "index": k} for k in range(len(head.members))],
                "metrics": metrics,
            },
        )
        report("save", 1, 1)
    return TrainResult(
        metrics=metrics,
        eval_margins=[float(x) for x in eval_chosen - eval_rejected],
        eval_disagreement=None if spread is None else [float(x) for x in spread],
        output_dir=config.output_dir,
    )
