"""Preference-data row shapes, parsed into one record type.

This module is the single parser shared by the dataset importer
(`labeling`) and the training CLI (`python -m rewardmodel.training`).
It knows *row shapes*, not file types (`preferences.readers`) and not the
database: a reader yields dicts, `parse_row` turns each into a
`PreferenceRecord` or raises `RowError` naming the field.

Shapes accepted (`fmt`):

- ``trl``: TRL's preference shapes.
    * explicit prompt: ``{"prompt": str, "chosen": str, "rejected": str}``
    * implicit prompt, Anthropic HH transcripts:
      ``{"chosen": "\\n\\nHuman: …\\n\\nAssistant: …", "rejected": …}``;
      the prompt is the shared prefix up to the last ``"\\n\\nAssistant:"``
    * conversational: the same keys holding lists of ``{role, content}``
  Each row carries one vote, from the annotator ``"imported"``, for the
  chosen side. ``response_a`` is the chosen response here; the importer
  shuffles sides before storing. With ``gold=True`` every row is a gold
  pair whose answer is the chosen side (``record.gold == "a"`` before the
  shuffle).
- ``pairwise``: ``{"prompt", "response_a", "response_b", "id"?,
  "votes"?: [{"annotator", "choice": a|b|tie|both_bad, "strength"?, "rationale"?}],
  "metadata"?, "gold"?: a|b}``; the export shape of this project, so it
  round-trips. ``gold`` marks a gold pair and names its right answer
  (empty or null: not a gold pair). An export's ``p_chosen`` and ``split``
  are accepted and not read.
- ``pandalm``: the PandaLM human test set: ``{idx, instruction, input,
  response1, response2, annotator1..3}`` with 0 = tie, 1 = response1,
  2 = response2.

Example::

    >>> r = parse_row({"chosen": "\\n\\nHuman: hi\\n\\nAssistant: hello!",
    ...                "rejected": "\\n\\nHuman: hi\\n\\nAssistant: go away"})
    >>> (r.prompt, r.response_a, r.response_b, r.votes[0].choice)
    ('Human: hi', 'hello!', 'go away', 'a')
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preferences.labels import CHOICES
from preferences.records import (
    IMPORTED_ANNOTATOR,
    ImportedVote,
    PreferenceRecord,
    TrainingPair,
    record_to_training_pair,
)

FORMATS = ("auto", "trl", "pairwise", "pandalm")
DEFAULT_MAX_CHARS = 200_000

HUMAN = "Human:"
ASSISTANT = "Assistant:"
SYSTEM = "System:"
_ROLE_MARKERS = {"user": HUMAN, "assistant": ASSISTANT, "system": SYSTEM}
_MARKER_ROLES = {v: k for k, v in _ROLE_MARKERS.items()}
_TURN_SEP = "\n\n"


class RowError(ValueError):
    """A row that cannot become a comparable pair. `field` names the culprit."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# --------------------------------------------------------------------------- #
# Field validation
# --------------------------------------------------------------------------- #
def _text(row: dict, key: str, max_chars: int, *, label: str | None = None, allow_empty: bool = False) -> str:
    label = label or key
    if key not in row or row[key] is None:
        raise RowError(label, "is missing")
    value = row[key]
    if not isinstance(value, str):
        raise RowError(label, f"must be a string, got {type(value).__name__}")
    return _check_text(value, label, max_chars, allow_empty=allow_empty)


def _check_text(value: str, label: str, max_chars: int, *, allow_empty: bool = False) -> str:
    """The text, CRLF normalised and stripped. Only a response may be empty (see `_check_pair`)."""
    if "\x00" in value:
        raise RowError(label, "contains a NUL byte")
    if len(value) > max_chars:
        raise RowError(label, f"is {len(value):,} characters; the limit is {max_chars:,}")
    value = value.replace("\r\n", "\n").strip()
    if not value and not allow_empty:
        raise RowError(label, "is empty")
    return value


def _check_pair(prompt: str, a: str, b: str, b_label: str = "response_b") -> None:
    """A pair is comparable unless its two responses are the same text.

    One empty (or whitespace-only) response is real data: a model that said
    nothing, which people judged (HH-RLHF and MT-bench hold such rows). Two
    empty responses are the same text, so they are refused like any other.
    """
    if a == b:
        if not a:
            raise RowError(b_label, "is empty, and so is the other response: the pair cannot be compared")
        raise RowError(b_label, "is identical to the other response, so the pair cannot be compared")


def _external_id(row: dict, key: str) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)[:200]
    raise RowError(key, f"must be a string or integer, got {type(value).__name__}")


def _metadata(row: dict) -> dict:
    meta = row.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise RowError("metadata", f"must be an object, got {type(meta).__name__}")
    return meta


# --------------------------------------------------------------------------- #
# Transcripts and messages
# --------------------------------------------------------------------------- #
def split_hh_transcript(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two HH transcripts into (shared prompt, chosen reply, rejected reply).

    The prompt is the shared prefix up to the last ``"\\n\\nAssistant:"`` that
    both sides share; only the final assistant turn may differ.
    """
    marker = _TURN_SEP + ASSISTANT
    cut = chosen.rfind(marker)
    while cut != -1:
        prefix = chosen[:cut]
        if rejected.startswith(prefix + marker):
            return (
                prefix,
                chosen[cut + len(marker) :],
                rejected[cut + len(marker) :],
            )
        cut = chosen.rfind(marker, 0, cut)
    raise RowError("rejected", 'does not share a conversation prefix ending in "\\n\\nAssistant:" with chosen')


def messages_to_transcript(messages: list[dict], label: str) -> str:
    """Render ``[{role, content}]`` as one transcript string.

    A lone user message becomes its plain content, so single-turn prompts
    stay plain text; longer conversations use HH markers.
    """
    if not isinstance(messages, list) or not messages:
        raise RowError(label, "must be a non-empty list of {role, content} messages")
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise RowError(f"{label}[{i}]", "must be an object with a string 'content'")
        role = m.get("role")
        if role not in _ROLE_MARKERS:
            raise RowError(f"{label}[{i}].role", f"must be one of user, assistant, system, got {role!r}")
        turns.append((role, m["content"].strip()))
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1]
    return _TURN_SEP.join(f"{_ROLE_MARKERS[r]} {c}" for r, c in turns)


def transcript_to_messages(prompt: str) -> list[dict[str, str]]:
    """Inverse of `messages_to_transcript`, also for HH transcripts.

    Plain text (no leading role marker) is one user message.
    """
    text = prompt.strip()
    if not text.startswith((HUMAN, ASSISTANT, SYSTEM)):
        return [{"role": "user", "content": text}]
    messages: list[dict[str, str]] = []
    for chunk in ("\n\n" + text).split(_TURN_SEP):
        for marker, role in _MARKER_ROLES.items():
            if chunk.startswith(marker):
                messages.append({"role": role, "content": chunk[len(marker) :].strip()})
                break
        else:
            if chunk and messages:  # a paragraph break inside a turn
                messages[-1]["content"] += _TURN_SEP + chunk
    return messages


# --------------------------------------------------------------------------- #
# Row shapes
# --------------------------------------------------------------------------- #
def detect_format(row: dict) -> str:
    if "response_a" in row or "response_b" in row:
        return "pairwise"
    if "chosen" in row or "rejected" in row:
        return "trl"
    if "response1" in row and "annotator1" in row:
        return "pandalm"
    raise RowError(
        "row", "has neither chosen/rejected (trl), response_a/response_b (pairwise) nor response1/annotator1 (pandalm)"
    )


def parse_row(
    row: Any, fmt: str = "auto", *, max_chars: int = DEFAULT_MAX_CHARS, gold: bool = False
) -> PreferenceRecord:
    """Validate one row and normalise it into a `PreferenceRecord`.

    `gold` marks a TRL row as a gold pair with the chosen side as its answer;
    other shapes carry their own answer (pairwise ``gold``), so it is an
    error for them.
    """
    if not isinstance(row, dict):
        raise RowError("row", f"must be a JSON object, got {type(row).__name__}")
    if fmt == "auto":
        fmt = detect_format(row)
    if gold and fmt != "trl":
        raise RowError(
            "gold", f"marking every row gold applies to trl rows, not {fmt}: pairwise rows carry a gold field"
        )
    if fmt == "trl":
        record = _parse_trl(row, max_chars)
        return dataclasses.replace(record, gold="a") if gold else record
    if fmt == "pairwise":
        return _parse_pairwise(row, max_chars)
    if fmt == "pandalm":
        return _parse_pandalm(row, max_chars)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _parse_trl(row: dict, max_chars: int) -> PreferenceRecord:
    chosen, rejected = row.get("chosen"), row.get("rejected")
    for key, value in (("chosen", chosen), ("rejected", rejected)):
        if value is None:
            raise RowError(key, "is missing")
    meta: dict[str, Any] = {}
    if isinstance(chosen, list) or isinstance(rejected, list):
        prompt, chosen, rejected = _conversational(row)
    elif row.get("prompt") not in (None, ""):
        prompt = row["prompt"]
        if isinstance(prompt, list):
            prompt = messages_to_transcript(prompt, "prompt")
    else:
        if not isinstance(chosen, str) or not isinstance(rejected, str):
            raise RowError("chosen", "must be a string or a list of messages")
        prompt, chosen, rejected = split_hh_transcript(chosen, rejected)
    if not isinstance(prompt, str):
        raise RowError("prompt", f"must be a string, got {type(prompt).__name__}")
    for key, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str):
            raise RowError(key, f"must be a string, got {type(value).__name__}")
    prompt = _check_text(prompt, "prompt", max_chars)
    chosen = _check_text(chosen, "chosen", max_chars, allow_empty=True)
    rejected = _check_text(rejected, "rejected", max_chars, allow_empty=True)
    _check_pair(prompt, chosen, rejected, "rejected")
    margin = row.get("margin")
    if margin is not None:
        if not isinstance(margin, (int, float)) or isinstance(margin, bool):
            raise RowError("margin", f"must be a number, got {type(margin).__name__}")
        meta["margin"] = margin
    return PreferenceRecord(
        prompt=prompt,
        response_a=chosen,
        response_b=rejected,
        votes=(ImportedVote(IMPORTED_ANNOTATOR, "a"),),
        external_id=_external_id(row, "id"),
        metadata=meta,
    )


def _conversational(row: dict) -> tuple[str, str, str]:
    """Conversational TRL rows: explicit prompt messages, or an implicit shared prefix."""
    sides = {}
    for key in ("chosen", "rejected"):
        value = row[key]
        if not isinstance(value, list) or not value:
            raise RowError(key, "must be a non-empty list of messages (the other side is one)")
        last = value[-1]
        if not isinstance(last, dict) or last.get("role") != "assistant" or not isinstance(last.get("content"), str):
            raise RowError(key, "must end with an assistant message")
        sides[key] = value
    if row.get("prompt") not in (None, "", []):
        prompt = row["prompt"]
        prompt = messages_to_transcript(prompt, "prompt") if isinstance(prompt, list) else prompt
        prefix_c, prefix_r = sides["chosen"][:-1], sides["rejected"][:-1]
        if prefix_c or prefix_r:
            raise RowError("chosen", "holds earlier turns as well as an explicit prompt")
    else:
        prefix = sides["chosen"][:-1]
        if prefix != sides["rejected"][:-1]:
            raise RowError("rejected", "does not share its conversation prefix with chosen")
        if not prefix:
            raise RowError("prompt", "is missing: no explicit prompt and no shared conversation prefix")
        prompt = messages_to_transcript(prefix, "chosen")
    return prompt, sides["chosen"][-1]["content"], sides["rejected"][-1]["content"]


def _parse_pairwise(row: dict, max_chars: int) -> PreferenceRecord:
    prompt = _text(row, "prompt", max_chars)
    a = _text(row, "response_a", max_chars, allow_empty=True)
    b = _text(row, "response_b", max_chars, allow_empty=True)
    _check_pair(prompt, a, b)
    raw_votes = row.get("votes") or []
    if not isinstance(raw_votes, list):
        raise RowError("votes", f"must be a list, got {type(raw_votes).__name__}")
    votes = []
    seen = set()
    for i, v in enumerate(raw_votes):
        label = f"votes[{i}]"
        if not isinstance(v, dict):
            raise RowError(label, "must be an object {annotator, choice}")
        annotator = v.get("annotator")
        if not isinstance(annotator, (str, int)) or isinstance(annotator, bool) or str(annotator).strip() == "":
            raise RowError(f"{label}.annotator", "must be a non-empty string")
        annotator = str(annotator).strip()[:150]
        if annotator in seen:
            raise RowError(f"{label}.annotator", f"{annotator!r} votes twice on this pair")
        seen.add(annotator)
        choice = v.get("choice")
        if choice not in CHOICES:
            raise RowError(f"{label}.choice", f"must be one of {', '.join(CHOICES)}, got {choice!r}")
        strength = v.get("strength")
        if strength is not None and (
            not isinstance(strength, int) or isinstance(strength, bool) or not 1 <= strength <= 3
        ):
            raise RowError(f"{label}.strength", f"must be 1, 2 or 3, got {strength!r}")
        rationale = v.get("rationale") or ""
        if not isinstance(rationale, str):
            raise RowError(f"{label}.rationale", "must be a string")
        if "\x00" in rationale or len(rationale) > max_chars:
            raise RowError(f"{label}.rationale", "contains a NUL byte or is over the length limit")
        votes.append(ImportedVote(annotator, choice, strength, rationale.strip()))
    gold = row.get("gold")
    if gold == "":
        gold = None
    if gold is not None and gold not in ("a", "b"):
        raise RowError("gold", f"must be a or b (the right answer of a gold pair), got {gold!r}")
    return PreferenceRecord(
        prompt=prompt,
        response_a=a,
        response_b=b,
        votes=tuple(votes),
        external_id=_external_id(row, "id"),
        metadata=_metadata(row),
        gold=gold,
    )


_PANDALM_CHOICE = {0: "tie", 1: "a", 2: "b"}


def _parse_pandalm(row: dict, max_chars: int) -> PreferenceRecord:
    instruction = _text(row, "instruction", max_chars)
    extra = row.get("input") or ""
    if not isinstance(extra, str):
        raise RowError("input", f"must be a string, got {type(extra).__name__}")
    prompt = instruction if not extra.strip() else f"{instruction}\n\n{_check_text(extra, 'input', max_chars)}"
    a = _text(row, "response1", max_chars, allow_empty=True)
    b = _text(row, "response2", max_chars, allow_empty=True)
    _check_pair(prompt, a, b, "response2")
    votes = []
    for key in ("annotator1", "annotator2", "annotator3"):
        if row.get(key) is None:
            continue
        label = row[key]
        if label not in _PANDALM_CHOICE or isinstance(label, bool):
            raise RowError(key, f"must be 0 (tie), 1 or 2, got {label!r}")
        votes.append(ImportedVote(f"pandalm-{key}", _PANDALM_CHOICE[label]))
    meta = {k: row[k] for k in ("motivation_app", "cmp_key") if isinstance(row.get(k), str)}
    return PreferenceRecord(
        prompt=prompt,
        response_a=a,
        response_b=b,
        votes=tuple(votes),
        external_id=_external_id(row, "idx"),
        metadata=meta,
    )


# --------------------------------------------------------------------------- #
# JSONL files (the training CLI's input; the importer has more readers)
# --------------------------------------------------------------------------- #
def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, decoded JSON) for each non-blank line; gzip by suffix."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                raise RowError("line", f"{line_no}: not valid JSON ({exc.msg})") from None


@dataclass
class PairFile:
    pairs: list[TrainingPair]
    rows: int = 0
    no_majority: int = 0  # rows left out: tie or split vote
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, error)


def read_training_pairs(
    path: str | Path, fmt: str = "auto", *, skip_invalid: bool = False, max_chars: int = DEFAULT_MAX_CHARS
) -> PairFile:
    """Read a trl/pairwise/pandalm JSONL file into training pairs.

    Rows without a non-tie majority are left out (they carry no preference)
    and counted. An invalid row raises `RowError` with its line number, or
    with ``skip_invalid`` is recorded in ``skipped`` and passed over.
    """
    out = PairFile(pairs=[])
    for line_no, row in iter_jsonl(path):
        out.rows += 1
        try:
            record = parse_row(row, fmt, max_chars=max_chars)
        except RowError as exc:
            if skip_invalid:
                out.skipped.append((line_no, str(exc)))
                continue
            raise RowError(exc.field, f"line {line_no}: {exc.message}") from None
        pair = record_to_training_pair(record)
        if pair is None:
            out.no_majority += 1
        else:
            out.pairs.append(pair)
    return out
