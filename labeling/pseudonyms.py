"""Pseudonymous annotator ids for exports, and their way back in on import.

An export names people who voted in the app by a keyed HMAC of their
annotator id: stable across exports, meaningless without SECRET_KEY. On
re-import into the same deployment the name resolves to the same person,
so a round trip never counts their votes twice.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from django.conf import settings

PREFIX = "anon-"


def annotator_pseudonym(*, annotator_id: int) -> str:
    """A stable id for an annotator that reveals nobody without SECRET_KEY."""
    mac = hmac.new(settings.SECRET_KEY.encode("utf-8"), f"annotator:{annotator_id}".encode(), hashlib.sha256)
    return PREFIX + mac.hexdigest()[:16]


def pseudonyms_resolve(*, names: Iterable[str], annotator_ids: Iterable[int]) -> dict[str, int]:
    """Which of `names` are the pseudonyms of which of `annotator_ids`."""
    wanted = {n for n in names if n.startswith(PREFIX)}
    if not wanted:
        return {}
    out = {}
    for annotator_id in annotator_ids:
        name = annotator_pseudonym(annotator_id=annotator_id)
        if name in wanted:
            out[name] = annotator_id
    return out
