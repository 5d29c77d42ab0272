"""Heads: linear Bradley-Terry heads on frozen, cached features of a tiny random-init BERT."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewardmodel.training import Progress, RewardScorer, TrainConfig, TrainingCancelled, train
from rewardmodel.training.features import Embedder, FeatureSpec, FeatureStore, features_for, side_key
from rewardmodel.training.head import fit_head, soft_bt_loss
from tests.training.test_training_engine import REQUIRED_METRICS


def head_config(**overrides) -> TrainConfig:
    return TrainConfig.tiny(kind="head", **overrides)


@pytest.fixture(scope="module")
def head_run(tmp_path_factory, train_pairs, eval_pairs):
    root = tmp_path_factory.mktemp("head")
    seen: list[Progress] = []
    result = train(
        head_config(output_dir=str(root / "model")),
        train_pairs,
        eval_pairs,
        on_progress=seen.append,
        feature_cache=root / "cache",
    )
    return result, root, seen


def test_a_head_learns_the_preference_and_reports_the_fine_tunes_metrics(head_run, eval_pairs):
    result, _, seen = head_run
    m = result.metrics
    assert set(m) >= REQUIRED_METRICS, REQUIRED_METRICS - set(m)
    assert m["kind"] == "head" and m["held_out_accuracy"] >= 0.9 and m["train_accuracy"] >= 0.9
    # plus the members' disagreement, from the Laplace posterior
    assert m["ensemble"] == 5 and len(m["member_accuracies"]) == 5
    assert m["ensemble_disagreement"] > 0 and 0 <= m["ensemble_split_share"] <= 1
    assert len(result.eval_margins) == len(result.eval_disagreement) == len(eval_pairs)
    assert m["ridge"] > 0 and m["cv_log_loss"]
    # progress: embedding, then the fit, fraction never going back
    phases = [p.phase for p in seen]
    assert phases.index("embed") < phases.index("fit")
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.95


def test_the_saved_head_scores_like_the_run_and_says_its_kind(head_run, eval_pairs):
    result, root, _ = head_run
    meta = json.loads((root / "model" / "reward_meta.json").read_text())
    assert meta["kind"] == "head" and meta["feature_spec"]["layer"] == -2
    assert meta["feature_spec"]["pooling"] == "response_mean"
    scorer = RewardScorer.load(root / "model", device="cpu")
    prompts = [p.prompt for p in eval_pairs]
    chosen, _ = scorer.score(prompts, [p.chosen for p in eval_pairs])
    rejected, _ = scorer.score(prompts, [p.rejected for p in eval_pairs])
    margins = np.array(chosen) - np.array(rejected)
    # the cache holds float16 features: the same margins, to their precision
    assert margins == pytest.approx(result.eval_margins, rel=2e-2, abs=2e-2)


def test_a_second_fit_embeds_nothing_it_has_cached(head_run, train_pairs, eval_pairs):
    _, root, _ = head_run
    again = train(head_config(), train_pairs, eval_pairs, feature_cache=root / "cache")
    assert again.metrics["embedded_sides"] == 0 and again.metrics["pairs_per_second"] is None
    assert again.metrics["cached_sides"] == 2 * (len(train_pairs) + len(eval_pairs))


def test_cancel_stops_a_head(train_pairs, eval_pairs):
    with pytest.raises(TrainingCancelled):
        train(head_config(), train_pairs, eval_pairs, on_progress=lambda p: p.phase == "fit")


def test_plain_transformers_and_a_few_lines_score_a_saved_head(head_run, eval_pairs):
    """The documented recipe (docs/training.md) gives the scorer's rewards without this project's scorer."""
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from rewardmodel.training.model import resolve_backbone

    _, root, _ = head_run
    folder = root / "model"
    meta = json.loads((folder / "reward_meta.json").read_text())
    spec = meta["feature_spec"]
    # the recipe: the backbone, the head's weight, the feature of the response's tokens
    tok = AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.from_pretrained(resolve_backbone(spec["backbone"]), **spec["config_overrides"])
    torch.manual_seed(0)  # random_init in this test: the same seeded weights the head saw
    model = AutoModel.from_config(config).eval()
    weight = load_file(str(folder / "head.safetensors"))["weight"]
    pair = eval_pairs[0]
    enc = tok(pair.prompt, pair.chosen, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states[spec["layer"]][0]
    response = enc["token_type_ids"][0].bool()
    response[-1] = False  # the closing [SEP]
    reward = float(hidden[response].mean(0).numpy() @ weight)
    scorer = RewardScorer.load(folder, device="cpu")
    assert reward == pytest.approx(scorer.score([pair.prompt], [pair.chosen])[0][0], rel=1e-3, abs=1e-3)


def test_soft_labels_enter_the_loss_as_written():
    # given one margin and a soft label, the loss is -[q log s(z) + (1-q) log s(-z)], by hand
    z, q = 0.7, 0.8
    by_hand = -(q * math.log(1 / (1 + math.exp(-z))) + (1 - q) * math.log(1 / (1 + math.exp(z))))
    assert soft_bt_loss(np.array([z]), np.array([q])) == pytest.approx(by_hand)
    # and a fit on soft labels of 0.5 everywhere learns nothing
    rng = np.random.default_rng(0)
    head, _ = fit_head(rng.normal(size=(200, 8)), np.full(200, 0.5), [str(i % 20) for i in range(200)])
    assert np.abs(head.weight).max() < 1e-3


def test_ridge_is_chosen_on_training_pairs_by_prompt_folds():
    # given a separable signal in one dimension and noise in 30 others
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 31))
    q = (x[:, 0] > 0).astype(float)
    head, info = fit_head(x, q, [f"prompt {i // 2}" for i in range(400)], members=3)
    # then the signal dominates the weights, and every grid point was scored
    assert np.argmax(np.abs(head.weight)) == 0 and len(info["cv_log_loss"]) == 11
    assert head.members.shape == (3, 31)


def test_the_cache_key_changes_with_backbone_format_layer_and_pooling(tmp_path):
    base = FeatureSpec()
    keys = {base.key("text_pair")}
    for variant in (
        FeatureSpec(backbone="other/model"),
        FeatureSpec(layer=-1),
        FeatureSpec(pooling="mean"),
        FeatureSpec(max_length=512),
    ):
        keys.add(variant.key("text_pair"))
    keys.add(base.key("chat_template"))
    assert len(keys) == 6


def test_the_store_serves_what_it_was_given_and_only_that(tmp_path):
    store = FeatureStore(tmp_path / "k", dim=4)
    keys = np.array([side_key("p", r) for r in ("a", "b", "c")])
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.add(keys[:2], vectors[:2])
    store.add(keys[1:], vectors[1:])  # b again: kept once
    assert store.contains(keys).all() and len(store) == 3
    assert np.array_equal(store.read(keys[::-1]), vectors[::-1])
    with pytest.raises(KeyError):
        store.read(np.array([side_key("p", "zzz")]))
    # a new process sees the same shards
    assert np.array_equal(FeatureStore(tmp_path / "k").read(keys), vectors)


def test_features_for_embeds_only_missing_sides(tmp_path):
    spec = FeatureSpec(
        random_init=True,
        config_overrides={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
        max_length=64,
    )
    embedder = Embedder(spec, bf16=False)
    store = FeatureStore(tmp_path / embedder.key, dim=embedder.dim)
    first = features_for(["p", "p"], ["yes", "no"], embedder=embedder, store=store)
    assert embedder.sides == 2
    second = features_for(["p", "p", "q"], ["no", "yes", "maybe"], embedder=embedder, store=store)
    assert embedder.sides == 3  # only "maybe" was new
    assert np.allclose(second[:2], first[::-1]) and second.shape == (3, 32)


def test_skipping_the_unread_layers_of_the_packaged_minilm_changes_no_feature():
    """The default backbone is cut after the layer read; the feature is the full model's hidden state."""
    import torch
    from transformers import AutoModel

    from rewardmodel.training.model import resolve_backbone

    embedder = Embedder(FeatureSpec(), bf16=False)
    assert embedder.model.config.num_hidden_layers == 5  # of 6: layer -2 is the fifth's output
    full = AutoModel.from_pretrained(resolve_backbone(FeatureSpec().backbone)).eval()
    prompt, response = "Human: how do I boil an egg?", "Put it in boiling water for eight minutes."
    seqs = embedder.encoder.encode([prompt], [response])
    ids = torch.tensor(seqs.input_ids)
    with torch.no_grad():
        hidden = full(
            input_ids=ids, token_type_ids=torch.tensor(seqs.token_type_ids), output_hidden_states=True
        ).hidden_states[-2][0]
    start, end = seqs.response_spans[0]
    expected = hidden[start:end].mean(0).numpy()
    assert np.allclose(embedder.embed([prompt], [response])[0], expected, atol=1e-4)


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory):
    """A 2-layer random-init GPT-2 folder (with the MiniLM tokenizer: no download), as a backbone."""
    from transformers import GPT2Config

    from rewardmodel.training.config import DEFAULT_BACKBONE
    from rewardmodel.training.model import load_tokenizer, resolve_backbone

    folder = tmp_path_factory.mktemp("decoder")
    tokenizer = load_tokenizer(resolve_backbone(DEFAULT_BACKBONE))
    GPT2Config(vocab_size=tokenizer.vocab_size, n_layer=2, n_embd=32, n_head=2, n_positions=128).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("kind", ["head", "finetune"])
def test_a_decoder_backbone_works_for_both_kinds(tiny_decoder, train_pairs, eval_pairs, tmp_path, kind):
    config = TrainConfig.tiny(
        kind=kind,
        backbone=tiny_decoder,
        config_overrides={},
        feature_pooling="last",
        output_dir=str(tmp_path / "model"),
    )
    result = train(config, train_pairs, eval_pairs, feature_cache=tmp_path / "cache")
    assert result.metrics["held_out_accuracy"] is not None and len(result.eval_margins) == len(eval_pairs)
    scorer = RewardScorer.load(tmp_path / "model", device="cpu")
    raw, _ = scorer.score([eval_pairs[0].prompt], [eval_pairs[0].chosen])
    assert math.isfinite(raw[0])
