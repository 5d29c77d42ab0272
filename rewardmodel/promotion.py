"""Whether a newly trained version may go live: pure rules, no database.

A version is promotable when its held-out metrics are finite and its
held-out accuracy is at most `delta` below the active version's. The test
split is fixed per prompt, so the two accuracies are measured on the same
held-out prompts (plus whatever new test-split votes arrived meanwhile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# None here means the engine met a NaN or inf (it writes those as None) or
# had no held-out pairs: either way there is nothing sound to compare.
REQUIRED_FINITE = ("held_out_accuracy", "eval_loss", "reward_mean", "reward_std")


@dataclass(frozen=True)
class Decision:
    promote: bool
    note: str


def non_finite_metrics(metrics: dict[str, Any]) -> list[str]:
    """Names of required metrics that are missing or not finite, and of any NaN/inf anywhere."""
    bad = [name for name in REQUIRED_FINITE if not _is_finite_number(metrics.get(name))]
    bad += [path for path in _nan_paths(metrics, "") if path not in bad]
    return bad


def promotion_decide(*, new_metrics: dict[str, Any], active_metrics: dict[str, Any] | None, delta: float) -> Decision:
    bad = non_finite_metrics(new_metrics)
    if bad:
        return Decision(False, f"Not promoted: metrics not finite or missing ({', '.join(bad)}).")
    new = float(new_metrics["held_out_accuracy"])
    if active_metrics is None:
        return Decision(True, f"Promoted: first version (held-out accuracy {new:.3f}).")
    old = active_metrics.get("held_out_accuracy")
    if not _is_finite_number(old):
        return Decision(True, f"Promoted: held-out accuracy {new:.3f}; the active version had none to compare.")
    old = float(old)
    # A small tolerance keeps 0.80 - 0.01 == 0.79 from failing on float rounding.
    if new >= old - delta - 1e-9:
        return Decision(True, f"Promoted: held-out accuracy {new:.3f} vs active {old:.3f} (allowed drop {delta:.3f}).")
    return Decision(
        False, f"Not promoted: held-out accuracy {new:.3f} is more than {delta:.3f} below the active {old:.3f}."
    )


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _nan_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [path or "metrics"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nan_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _nan_paths(v, f"{path}[{i}]")]
    return []
