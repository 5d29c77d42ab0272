"""The Bradley-Terry loss, with the Llama-2 margin and TRL's centring term.

Bradley-Terry models P(chosen beats rejected) = sigmoid(r_chosen - r_rejected),
and the loss is that probability's negative log-likelihood.

Soft labels: a label model (preferences.label_models) may say how sure it
is of a pair's label, q = P(chosen is better) in [0.5, 1]. The loss is then
the cross-entropy against q,

    -[q log sigmoid(d) + (1 - q) log sigmoid(-d)],  d = r_chosen - r_rejected - margin,

which is exactly the plain loss when q = 1, and at q = 0.5 asks only that
the two rewards be equal.

Ties are not in the training data: `formats.read_training_pairs` leaves out
pairs without a strict majority for one side. A tie says "equally good",
which Bradley-Terry cannot express; Rao-Kupper adds a tie parameter for it,
but ties are rare in our sources (none in HH-RLHF) and a second parameter to
fit is not worth the complexity yet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def margin_for(strength: int | None, strength_margins: list[float]) -> float:
    """The Llama-2 margin for a pair: 0 without a strength, else the configured one for 1-3."""
    return 0.0 if strength is None else strength_margins[strength - 1]


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
    q: torch.Tensor | None = None,
) -> torch.Tensor:
    """-log sigmoid(r_chosen - r_rejected - margin), averaged over pairs; with soft labels `q`
    (P(chosen is better) per pair), -[q log sigmoid(d) + (1 - q) log sigmoid(-d)].

    A margin m asks the chosen reward to lead by at least about m: clearly
    better pairs (higher strength) should be pulled further apart.
    `center_coef` adds center_coef * mean((r_chosen + r_rejected)^2), which
    pins the rewards' free offset near 0 (Eisenstein et al. 2023, as in TRL).

    >>> round(bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])).item(), 4)
    0.1269
    """
    diff = r_chosen - r_rejected
    if margin is not None:
        diff = diff - margin
    if q is None:
        loss = -F.logsigmoid(diff).mean()
    else:
        loss = -(q * F.logsigmoid(diff) + (1.0 - q) * F.logsigmoid(-diff)).mean()
    if center_coef:
        loss = loss + center_coef * ((r_chosen + r_rejected) ** 2).mean()
    return loss
