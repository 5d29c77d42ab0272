"""A fixed project whose exports must never change byte for byte (tests/labeling/test_export_unchanged.py).

Written so that the same function builds it on any version of the code:
the record classes are passed in.
"""

from __future__ import annotations


def fixture_records(PreferenceRecord, ImportedVote) -> list:
    """Thirty pairs: decisive, tied and split votes, strengths, rationales, metadata, both_bad,
    conversations, non-ASCII text and cells a spreadsheet would run as formulas."""
    records = []
    for i in range(30):
        prompt = (
            f"Human: question {i} — ¿qué tal?\n\nAssistant: Ask away.\n\nHuman: follow-up {i}"
            if i % 5 == 0
            else f"Explain item {i}: =SUM(A{i})"
            if i % 7 == 0
            else f"Prompt {i} ✓"
        )
        choices = (
            [("a", 3), ("a", None), ("b", 1)]
            if i % 3 == 0
            else [("tie", None), ("both_bad", None)]
            if i % 3 == 1
            else [("b", 2)]
            if i % 4
            else []
        )
        votes = tuple(
            ImportedVote(f"rater-{(i + k) % 4}", choice, strength, 'because, "quoted"' if k == 0 else "")
            for k, (choice, strength) in enumerate(choices)
        )
        records.append(
            PreferenceRecord(
                prompt=prompt,
                response_a=f"Answer A{i}: -{i} and +{i}\nsecond line",
                response_b=f"B{i} 日本語",
                votes=votes,
                external_id=f"ext-{i}" if i % 2 else None,
                metadata={"i": i, "tags": ["x", "y"]} if i % 6 == 0 else {},
            )
        )
    return records


CASES = [
    (fmt, split, kind)
    for fmt in ("trl", "pairwise")
    for split in ("all", "train", "test")
    for kind in ("jsonl", "csv", "parquet")
]
