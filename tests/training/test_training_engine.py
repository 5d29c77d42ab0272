"""The training loop itself, on a tiny random-init BERT (seconds on a CPU)."""

import json

import pytest

from preferences.records import TrainingPair
from rewardmodel.training import Progress, TrainConfig, TrainingCancelled, train

REQUIRED_METRICS = {
    "held_out_accuracy",
    "held_out_accuracy_ci",
    "eval_loss",
    "train_accuracy",
    "ece",
    "reliability",
    "length_buckets",
    "length_baseline_accuracy",
    "p_model_prefers_longer",
    "p_human_prefers_longer",
    "reward_mean",
    "reward_std",
    "extreme_reward_share",
    "swap_max_abs_diff",
    "ensemble_disagreement",
    "pairs_per_second",
    "tokens_per_second",
    "pad_fraction",
    "truncated_pairs",
    "n_train",
    "n_eval",
    "epochs_run",
    "device",
}


def test_learns_the_synthetic_preference_and_reports_every_metric(train_pairs, eval_pairs):
    seen: list[Progress] = []
    result = train(TrainConfig.tiny(), train_pairs, eval_pairs, on_progress=seen.append)
    m = result.metrics
    assert set(m) >= REQUIRED_METRICS
    json.dumps(m, allow_nan=False)
    assert m["held_out_accuracy"] >= 0.9 and m["train_accuracy"] >= 0.9
    lo, hi = m["held_out_accuracy_ci"]
    assert lo <= m["held_out_accuracy"] <= hi
    assert (m["n_train"], m["n_eval"], m["epochs_run"]) == (48, 16, 3.0)
    assert m["ensemble_disagreement"] is None and result.eval_disagreement is None
    assert m["swap_max_abs_diff"] < 1e-4  # a response's score does not depend on its side
    assert 0 <= m["pad_fraction"] < 0.5 and m["pairs_per_second"] > 0
    assert len(result.eval_margins) == 16 and result.output_dir is None

    train_steps = [p for p in seen if p.phase == "train"]
    assert [p.step for p in train_steps] == list(range(1, 3 * 6 + 1))  # called at every step
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert train_steps[-1].metrics["train_loss"] > 0  # synced metrics ride along


def test_same_seed_same_model_other_seed_other_model(train_pairs, eval_pairs):
    a = train(TrainConfig.tiny(epochs=1), train_pairs, eval_pairs)
    b = train(TrainConfig.tiny(epochs=1), train_pairs, eval_pairs)
    c = train(TrainConfig.tiny(epochs=1, seed=1), train_pairs, eval_pairs)
    assert a.eval_margins == b.eval_margins
    assert a.eval_margins != c.eval_margins


def test_on_progress_returning_true_cancels_within_a_step(train_pairs, eval_pairs):
    calls = []

    def stop_at_third_step(p: Progress):
        calls.append((p.phase, p.step))
        return p.phase == "train" and p.step == 3

    with pytest.raises(TrainingCancelled):
        train(TrainConfig.tiny(), train_pairs, eval_pairs, on_progress=stop_at_third_step)
    assert calls[-1] == ("train", 3)


def test_early_stopping_halts_when_eval_accuracy_stops_improving(train_pairs):
    # Identical sides give a zero margin: eval accuracy is stuck at 0.
    stuck = [TrainingPair(p.prompt, p.chosen, p.chosen) for p in train_pairs[:8]]
    config = TrainConfig.tiny(epochs=6, early_stopping_patience=2, evals_per_epoch=2)
    result = train(config, train_pairs, stuck)
    # first eval (half an epoch) is the best; two more without progress stop the run
    assert result.metrics["epochs_run"] == 1.5


def test_ensemble_reports_per_pair_and_summary_disagreement(train_pairs, eval_pairs):
    result = train(TrainConfig.tiny(ensemble=3, epochs=1, bootstrap=True), train_pairs, eval_pairs)
    m = result.metrics
    assert len(result.eval_disagreement) == len(eval_pairs)
    assert all(d >= 0 for d in result.eval_disagreement) and max(result.eval_disagreement) > 0
    assert m["ensemble_disagreement"] == pytest.approx(sum(result.eval_disagreement) / len(eval_pairs))
    assert m["ensemble"] == 3 and len(m["member_accuracies"]) == 3


def test_center_rewards_pulls_the_reward_mean_to_zero(train_pairs, eval_pairs):
    free = train(TrainConfig.tiny(), train_pairs, eval_pairs).metrics
    centred = train(TrainConfig.tiny(center_rewards_coef=1.0), train_pairs, eval_pairs).metrics
    assert abs(centred["reward_mean"]) < abs(free["reward_mean"])


def test_margin_by_strength_widens_the_learned_margins(train_pairs, eval_pairs):
    strong = [TrainingPair(p.prompt, p.chosen, p.rejected, strength=3) for p in train_pairs]
    plain = train(TrainConfig.tiny(), strong, eval_pairs)
    margin = train(TrainConfig.tiny(margin_by_strength=True, strength_margins=[0, 0, 3.0]), strong, eval_pairs)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(margin.eval_margins) > mean(plain.eval_margins)


def test_trains_without_eval_pairs(train_pairs, tmp_path):
    result = train(TrainConfig.tiny(epochs=1, output_dir=str(tmp_path)), train_pairs, [])
    m = result.metrics
    assert m["held_out_accuracy"] is None and m["held_out_accuracy_ci"] == [None, None]
    assert m["train_accuracy"] is not None and m["n_eval"] == 0
    meta = json.loads((tmp_path / "reward_meta.json").read_text())
    assert meta["normalization_source"] == "train_sample" and meta["reward_std"] > 0


def test_truncated_pairs_are_trained_on_and_counted(eval_pairs):
    long = [TrainingPair("Human: " + "tell me a long story " * 20, "ok thank you kindly", "no go away now")] * 8
    result = train(TrainConfig.tiny(epochs=1), long, eval_pairs)
    assert result.metrics["truncated_pairs"] == 8 and result.metrics["n_train"] == 8
