"""Preference data without Django or torch: what a pair, a vote and a label are.

- `labels`: the one label rule (a strict plurality of a `Tally`).
- `records`: the record types (`PreferenceRecord`, `ImportedVote`, `TrainingPair`).
- `formats`: row shapes (trl, pairwise, pandalm) parsed into records.
- `readers` / `writers`: files in and out (JSONL, JSON, CSV, parquet, datasets folders).
- `tabular`: how nested values and formula-like cells live in flat files.
- `agreement`: agreement statistics over vote tallies, with intervals.

Everything above it imports it (the trainer, labeling, rewardmodel, the
dashboard); it imports none of them (tests/test_architecture.py).
"""
