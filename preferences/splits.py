"""Which side of the train / held-out split a prompt falls on: fixed by the prompt alone.

Every pair of a prompt lands on the same side, so a model is never scored
on a prompt it trained on, and the split never moves as pairs arrive. The
project's pairs, the simulator and the benchmarks all split with this.
"""

from __future__ import annotations

import hashlib

TRAIN, TEST = "train", "test"


def split_for_prompt(prompt: str, test_percent: int) -> str:
    """ "test" for about `test_percent`% of prompts (by a hash of the prompt), else "train"."""
    bucket = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "big") % 100
    return TEST if bucket < test_percent else TRAIN
