import math

import torch

from rewardmodel.training.loss import bradley_terry_loss, margin_for


def test_loss_is_the_bradley_terry_negative_log_likelihood():
    rc, rr = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.0, 0.5, -1.0])
    expected = sum(-math.log(1 / (1 + math.exp(-(c - r)))) for c, r in zip(rc.tolist(), rr.tolist())) / 3
    assert math.isclose(bradley_terry_loss(rc, rr).item(), expected, rel_tol=1e-6)


def test_margin_raises_the_loss_until_the_lead_exceeds_it():
    rc, rr = torch.tensor([1.0]), torch.tensor([0.0])
    with_margin = bradley_terry_loss(rc, rr, margin=torch.tensor([1.0])).item()
    assert math.isclose(with_margin, math.log(2), rel_tol=1e-6)  # lead == margin: a coin flip
    assert with_margin > bradley_terry_loss(rc, rr).item()


def test_margin_for_maps_strength_and_leaves_unrated_pairs_alone():
    margins = [0.1, 0.2, 0.3]
    assert [margin_for(s, margins) for s in (None, 1, 2, 3)] == [0.0, 0.1, 0.2, 0.3]


def test_center_term_adds_the_mean_squared_reward_sum():
    rc, rr = torch.tensor([3.0, 1.0]), torch.tensor([1.0, 1.0])
    plain = bradley_terry_loss(rc, rr).item()
    centred = bradley_terry_loss(rc, rr, center_coef=0.5).item()
    assert math.isclose(centred - plain, 0.5 * (16 + 4) / 2, rel_tol=1e-6)
    # shifting both rewards leaves Bradley-Terry unchanged but not the centred loss
    assert math.isclose(bradley_terry_loss(rc + 5, rr + 5).item(), plain, rel_tol=1e-6)
    assert bradley_terry_loss(rc + 5, rr + 5, center_coef=0.5).item() > centred
