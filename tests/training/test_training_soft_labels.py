"""Soft labels (p_chosen from a label model) in the loss, the batches, the fingerprint, a fine-tune and a head."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
import torch

from preferences.records import soft_training_pair
from rewardmodel.training import TrainConfig, train
from rewardmodel.training.data import EncodedPairs, PairEncoder, fingerprint
from rewardmodel.training.head_trainer import soft_labels
from rewardmodel.training.loss import bradley_terry_loss
from rewardmodel.training.model import load_tokenizer, resolve_backbone


def with_p(pairs, p):
    return [dataclasses.replace(pair, p_chosen=p) for pair in pairs]


def test_the_soft_loss_against_a_hand_computation():
    # given two pairs: d = r_chosen - r_rejected = 1.0 with q = 0.9, and d = -0.5 with q = 0.6
    rc, rr, q = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.5]), torch.tensor([0.9, 0.6])
    # by hand, -[q log s(d) + (1-q) log s(-d)] = log(1 + e^-d) + (1 - q) d:
    #   pair 1: log(1 + e^-1)   = 0.3132617 (+ 0.1 * 1.0)    = 0.4132617
    #   pair 2: log(1 + e^0.5)  = 0.9740770 (+ 0.4 * -0.5)   = 0.7740770
    #   mean                                                 = 0.5936693
    assert bradley_terry_loss(rc, rr, q=q).item() == pytest.approx(0.5936693, abs=1e-6)
    # a margin of 0.5 on the first pair makes its d = 0.5: log(1 + e^-0.5) + 0.1 * 0.5 = 0.5240770
    # (0.5240770 + 0.7740770) / 2 = 0.6490770
    margin = torch.tensor([0.5, 0.0])
    assert bradley_terry_loss(rc, rr, margin, q=q).item() == pytest.approx(0.6490770, abs=1e-6)
    # the centring term adds as before: 0.5 * mean((1 + 0)^2, (0 + 0.5)^2) = 0.5 * 0.625 = 0.3125
    assert bradley_terry_loss(rc, rr, margin, 0.5, q).item() == pytest.approx(0.6490770 + 0.3125, abs=1e-6)


def test_q_of_one_is_exactly_the_plain_loss():
    torch.manual_seed(0)
    rc, rr, margin = torch.randn(32), torch.randn(32), torch.rand(32)
    ones = torch.ones(32)
    assert torch.equal(bradley_terry_loss(rc, rr, margin, 0.1, ones), bradley_terry_loss(rc, rr, margin, 0.1))


def test_the_soft_loss_is_least_where_the_model_says_q():
    # its minimum over d is at sigmoid(d) = q: the gradient vanishes at d = logit(q)
    q = torch.tensor([0.7])
    d = torch.tensor([math.log(0.7 / 0.3)], requires_grad=True)
    bradley_terry_loss(d, torch.zeros(1), q=q).backward()
    assert abs(d.grad.item()) < 1e-6


def test_soft_training_pair_chooses_the_favoured_side():
    a = soft_training_pair("q", "A", "B", 0.75, strength=2, pair_id="7")
    b = soft_training_pair("q", "A", "B", 0.25)
    even = soft_training_pair("q", "A", "B", 0.5)
    assert (a.chosen, a.rejected, a.p_chosen, a.strength, a.pair_id) == ("A", "B", 0.75, 2, "7")
    assert (b.chosen, b.rejected, b.p_chosen) == ("B", "A", 0.75)
    assert (even.chosen, even.p_chosen) == ("A", 0.5)
    with pytest.raises(ValueError, match="probability"):
        soft_training_pair("q", "A", "B", 1.5)


def test_the_fingerprint_of_hard_labels_is_unchanged_and_a_soft_label_changes_it(train_pairs):
    digest = hashlib.sha256()
    for p in train_pairs:  # the fingerprint as it was before soft labels existed
        digest.update(json.dumps([p.prompt, p.chosen, p.rejected, p.strength], ensure_ascii=False).encode())
        digest.update(b"\n")
    assert fingerprint(train_pairs) == digest.hexdigest()
    assert fingerprint(with_p(train_pairs, 0.8)) != fingerprint(train_pairs)
    assert fingerprint(with_p(train_pairs, 0.8)) != fingerprint(with_p(train_pairs, 0.9))


def test_batches_carry_each_pairs_soft_label(train_pairs):
    encoder = PairEncoder(load_tokenizer(resolve_backbone(TrainConfig.tiny().backbone)), 64)
    mixed = [dataclasses.replace(p, p_chosen=0.5 + i / 100) if i % 2 else p for i, p in enumerate(train_pairs)]
    data = EncodedPairs.build(encoder, mixed, [0.0] * len(mixed))
    assert data.soft_labels == [0.5 + i / 100 if i % 2 else 1.0 for i in range(len(mixed))]
    assert EncodedPairs.build(encoder, train_pairs, [0.0] * len(train_pairs)).soft_labels is None
    assert list(soft_labels(mixed)) == data.soft_labels


def test_a_fine_tune_on_soft_labels(train_pairs, eval_pairs):
    hard = train(TrainConfig.tiny(epochs=1), train_pairs, eval_pairs)
    # q = 1 everywhere is the plain loss, step for step
    sure = train(TrainConfig.tiny(epochs=1), with_p(train_pairs, 1.0), eval_pairs)
    assert sure.eval_margins == hard.eval_margins
    # unsure labels pull the rewards apart less than sure ones, and still the right way
    unsure = train(TrainConfig.tiny(epochs=1), with_p(train_pairs, 0.6), eval_pairs)
    assert np.mean(unsure.eval_margins) < np.mean(hard.eval_margins)
    assert unsure.metrics["held_out_accuracy"] > 0.5


def test_a_head_on_soft_labels(train_pairs, eval_pairs, tmp_path):
    config = TrainConfig.tiny(kind="head")
    hard = train(config, train_pairs, eval_pairs, feature_cache=tmp_path)
    unsure = train(config, with_p(train_pairs, 0.6), eval_pairs, feature_cache=tmp_path)
    coin = train(config, with_p(train_pairs, 0.5), eval_pairs, feature_cache=tmp_path)
    assert np.mean(coin.eval_margins) == pytest.approx(0.0, abs=1e-3)  # q = 0.5: nothing to learn
    assert 0 < np.mean(unsure.eval_margins) < np.mean(hard.eval_margins)
    assert unsure.metrics["held_out_accuracy"] >= 0.9
