"""A saved model is a plain Hugging Face model: transformers (and so TRL) loads it as is."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardmodel.training import RewardScorer, TrainConfig, train


def test_saved_folder_holds_weights_tokenizer_and_meta(saved_run, train_pairs):
    result, out = saved_run
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    meta = json.loads((out / "reward_meta.json").read_text())
    assert TrainConfig.from_dict(meta["config"]) == TrainConfig.tiny(output_dir=str(out))
    assert len(meta["train_data_sha256"]) == 64
    assert meta["reward_mean"] == result.metrics["reward_mean"] and meta["reward_std"] > 0
    assert meta["metrics"]["held_out_accuracy"] == result.metrics["held_out_accuracy"]
    assert meta["members"] == [{"path": ".", "seed": 0}]


def test_plain_transformers_gives_the_same_scores_as_the_scorer(saved_run, eval_pairs):
    _, out = saved_run
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    prompts = [p.prompt for p in eval_pairs] * 2
    responses = [p.chosen for p in eval_pairs] + [p.rejected for p in eval_pairs]
    with torch.no_grad():
        plain = [model(**tokenizer(p, r, return_tensors="pt")).logits.item() for p, r in zip(prompts, responses)]
    raw, normalized = RewardScorer.load(out, device="cpu").score(prompts, responses, batch_size=5)
    assert raw == pytest.approx(plain, abs=1e-5)
    meta = json.loads((out / "reward_meta.json").read_text())
    assert normalized == pytest.approx([(r - meta["reward_mean"]) / meta["reward_std"] for r in raw])


def test_scorer_reproduces_the_engines_eval_margins(saved_run, eval_pairs):
    result, out = saved_run
    scorer = RewardScorer.load(out, device="cpu")
    chosen, _ = scorer.score([p.prompt for p in eval_pairs], [p.chosen for p in eval_pairs])
    rejected, _ = scorer.score([p.prompt for p in eval_pairs], [p.rejected for p in eval_pairs])
    assert [c - r for c, r in zip(chosen, rejected)] == pytest.approx(result.eval_margins, abs=1e-4)


def test_ensemble_scores_are_the_members_mean(tmp_path, train_pairs, eval_pairs):
    out = tmp_path / "ens"
    result = train(TrainConfig.tiny(ensemble=2, epochs=1, output_dir=str(out)), train_pairs, eval_pairs)
    prompts, responses = [p.prompt for p in eval_pairs], [p.chosen for p in eval_pairs]
    members = [AutoModelForSequenceClassification.from_pretrained(out / d).eval() for d in (".", "members/1")]
    tokenizer = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        expected = [
            sum(m(**tokenizer(p, r, return_tensors="pt")).logits.item() for m in members) / 2
            for p, r in zip(prompts, responses)
        ]
    raw, _ = RewardScorer.load(out, device="cpu").score(prompts, responses)
    assert raw == pytest.approx(expected, abs=1e-5)
    assert result.eval_disagreement is not None


def test_scoring_nothing_and_mismatched_lengths(saved_run):
    scorer = RewardScorer.load(saved_run[1], device="cpu")
    assert scorer.score([], []) == ([], [])
    with pytest.raises(ValueError):
        scorer.score(["a"], [])
