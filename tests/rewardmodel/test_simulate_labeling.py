"""`manage.py simulate_labeling`: replays a labelled file, no database or worker needed."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from rewardmodel.training.simulate import labels_to_reach, summarise


def _write_pairs(path, n: int = 120) -> None:
    """A pairwise file whose polite response wins, one decisive vote each."""
    with open(path, "w") as fh:
        for i in range(n):
            row = {
                "prompt": f"Question {i}: how do I do task {i}?",
                "response_a": f"Step {i}: thank you kindly",
                "response_b": f"Step {i}: go away now",
                "votes": [{"annotator": "x", "choice": "a"}],
            }
            fh.write(json.dumps(row) + "\n")


def test_it_prints_curves_and_a_json_summary_for_a_small_file(tmp_path, rm_settings):
    path = tmp_path / "pairs.jsonl"
    _write_pairs(path)
    out, err = StringIO(), StringIO()
    call_command(
        "simulate_labeling",
        "--data",
        str(path),
        "--strategies",
        "uncertainty,diverse",
        "--seed-labels",
        "16",
        "--batch",
        "16",
        "--budget",
        "48",
        "--seeds",
        "2",
        "--cache",
        str(tmp_path / "cache"),
        "--plot",
        str(tmp_path / "curves.png"),
        stdout=out,
        stderr=err,
    )
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    # every strategy (random added) has a curve from the seed labels to the budget, with a CI per point
    assert set(summary["strategies"]) == {"random", "uncertainty", "diverse"}
    curve = summary["strategies"]["uncertainty"]["curve"]
    assert [point[0] for point in curve] == [16, 32, 48]
    assert all(lo <= acc <= hi for _, acc, lo, hi in curve)
    # the seeds start every strategy from the same labels, so the first points agree
    assert len({summary["strategies"][n]["curve"][0][1] for n in summary["strategies"]}) == 1
    assert set(summary["labels_to_match_random"]) == {"random", "uncertainty", "diverse"}
    assert summary["held_out"] > 0 and summary["train_pool"] + summary["held_out"] == 120
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert "labels to match random" in out.getvalue()


def test_bad_arguments_are_clear_errors(tmp_path, rm_settings):
    path = tmp_path / "pairs.jsonl"
    _write_pairs(path, 10)
    with pytest.raises(CommandError, match="unknown strategies: psychic"):
        call_command("simulate_labeling", "--data", str(path), "--strategies", "psychic")
    with pytest.raises(CommandError, match="no such file"):
        call_command("simulate_labeling", "--data", str(tmp_path / "missing.jsonl"))


def test_labels_to_reach_interpolates_and_says_never():
    assert labels_to_reach([64, 128, 192], [0.5, 0.6, 0.7], 0.65) == pytest.approx(160)
    assert labels_to_reach([64, 128], [0.5, 0.55], 0.6) is None
    summary = summarise({"random": [[(10, 0.5), (20, 0.6)]] * 3, "other": [[(10, 0.6), (20, 0.6)]] * 3}, 20)
    assert summary["labels_to_match_random"] == {"random": 1.0, "other": 0.5}
