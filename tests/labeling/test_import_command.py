"""`manage.py import_pairs`: formats, file types, summary line, failures, idempotence."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Q

from labeling.models import Annotator, Pair, Project, Vote

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
PANDALM = Path(os.environ.get("PANDALM_PATH", SHARED_DATA / "pandalm-testset-v1.json"))
HH_HELPFUL = SHARED_DATA / "hh-rlhf-helpful-base-test.jsonl.gz"
HH_HARMLESS = SHARED_DATA / "hh-rlhf-harmless-base-test.jsonl.gz"


def run(*args) -> tuple[dict, str]:
    """Run the command; returns the JSON summary (the last stdout line) and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import_pairs", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pairwise_rows(n: int, annotators=("ann-1", "ann-2", "ann-3")):
    choices = ["a", "b", "tie", "both_bad"]
    return [
        {
            "id": f"row-{i}",
            "prompt": f"Question {i}?",
            "response_a": f"Answer A{i}",
            "response_b": f"Answer B{i}",
            "votes": [{"annotator": a, "choice": choices[(i + k) % 4]} for k, a in enumerate(annotators[: i % 4])],
        }
        for i in range(n)
    ]


def test_pairwise_import_prints_json_summary_last_and_is_idempotent(project, tmp_path):
    # given rows with 0-3 named annotators each, some unlabeled
    path = write_jsonl(tmp_path / "pairs.jsonl", pairwise_rows(20))
    # when imported twice
    first, err = run("--project", project.slug, str(path))
    again, _ = run("--project", project.slug, str(path))
    # then
    assert first == {"created": 20, "duplicates": 0, "votes": 30, "skipped": 0}
    assert again == {"created": 0, "duplicates": 20, "votes": 0, "skipped": 0}
    assert "writing" in err  # the tqdm bar
    assert Pair.objects.filter(project=project).count() == 20
    assert set(Annotator.objects.filter(votes__project=project).values_list("external_id", flat=True)) == {
        "ann-1",
        "ann-2",
        "ann-3",
    }
    assert Pair.objects.get(external_id="row-3").vote_count == 3


@pytest.mark.django_db(transaction=True)
def test_failure_exits_non_zero_naming_line_and_field(tmp_path, settings):
    # given a project, and a file whose third row has two identical responses
    Project.objects.create(slug="shell", name="Shell")
    rows = pairwise_rows(3)
    rows[2]["response_b"] = rows[2]["response_a"]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    # when run from the shell against the test database
    env = {**os.environ, "SQLITE_PATH": str(settings.DATABASES["default"]["NAME"])}
    done = subprocess.run(
        [sys.executable, "manage.py", "import_pairs", "--project", "shell", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then
    assert done.returncode == 1
    assert "line 3: response_b is identical to the other response" in done.stderr
    assert "1 of 3 rows are invalid" in done.stderr and "Rerun with --skip-invalid" in done.stderr
    assert "Traceback" not in done.stderr
    assert Pair.objects.count() == 0


def test_trl_rows_get_shuffled_sides_and_a_vote_for_the_chosen_text(project, tmp_path):
    # given TRL rows whose chosen response always comes first
    rows = [{"prompt": f"Q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(60)]
    path = write_jsonl(tmp_path / "trl.jsonl", rows)
    # when
    summary, _ = run("--project", project.slug, "--format", "trl", str(path))
    # then response_a is not always the chosen one, and every vote names the chosen text
    assert summary == {"created": 60, "duplicates": 0, "votes": 60, "skipped": 0}
    pairs = list(Pair.objects.filter(project=project).prefetch_related("votes__annotator"))
    flipped = sum(p.response_b.startswith("good") for p in pairs)
    assert 10 < flipped < 50
    for pair in pairs:
        [vote] = pair.votes.all()
        assert vote.annotator.external_id == "imported"
        assert getattr(pair, f"response_{vote.choice}").startswith("good")


def test_trl_hh_transcripts_and_conversational_rows(project, tmp_path):
    # given the implicit-prompt HH shape and the conversational shape
    rows = [
        {
            "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour\n\nAssistant: Blue",
            "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour\n\nAssistant: No",
        },
        {
            "prompt": [{"role": "user", "content": "2+2?"}],
            "chosen": [{"role": "assistant", "content": "4"}],
            "rejected": [{"role": "assistant", "content": "5"}],
        },
    ]
    path = write_jsonl(tmp_path / "trl.jsonl", rows)
    # when
    run("--project", project.slug, str(path))
    # then
    hh = Pair.objects.get(prompt__startswith="Human: Hi")
    assert hh.prompt == "Human: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour"
    assert {hh.response_a, hh.response_b} == {"Blue", "No"}
    conv = Pair.objects.get(prompt="2+2?")
    assert {conv.response_a, conv.response_b} == {"4", "5"}


def test_create_project_only_when_the_file_is_valid(db, tmp_path):
    # given a bad file and a good one
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "response_a": "same", "response_b": "same"}])
    good = write_jsonl(tmp_path / "good.jsonl", pairwise_rows(4))
    # when
    with pytest.raises(CommandError, match="line 1: response_b is identical"):
        run("--project", "fresh", "--create-project", str(bad))
    summary, _ = run("--project", "fresh", "--create-project", str(good))
    # then
    assert Project.objects.filter(slug="fresh").count() == 1
    assert summary["created"] == 4


def test_unknown_project_without_create_flag_is_refused(db, tmp_path):
    # given
    path = write_jsonl(tmp_path / "p.jsonl", pairwise_rows(1))
    # when / then
    with pytest.raises(CommandError, match="no project 'nope'; pass --create-project"):
        run("--project", "nope", str(path))


def test_skip_invalid_reports_each_skipped_line(project, tmp_path):
    # given
    rows = pairwise_rows(4)
    rows[1]["prompt"] = ""
    rows[3]["votes"] = [{"annotator": "x", "choice": "maybe"}]
    path = write_jsonl(tmp_path / "p.jsonl", rows)
    # when
    summary, err = run("--project", project.slug, "--skip-invalid", "--no-progress", str(path))
    # then
    assert summary == {"created": 2, "duplicates": 0, "votes": 2, "skipped": 2}
    assert "skipped line 2: prompt is empty" in err
    assert "skipped line 4: votes[0].choice must be one of" in err


def test_hf_option_streams_with_load_dataset(project, tmp_path):
    # given a local dataset folder, which load_dataset(NAME, streaming=True) reads like a Hub repo
    repo = tmp_path / "hub-like"
    repo.mkdir()
    write_jsonl(repo / "train.jsonl", pairwise_rows(5))
    # when
    summary, _ = run("--project", project.slug, "--hf", str(repo), "--split", "train")
    # then
    assert summary["created"] == 5


def test_hf_unreachable_is_a_clear_error(project):
    # given no network (HF_HUB_OFFLINE=1) / when / then
    with pytest.raises(CommandError, match="could not load 'someone/no-such-dataset'"):
        run("--project", project.slug, "--hf", "someone/no-such-dataset", "--split", "train")


def test_save_to_disk_folder_with_votes_as_nested_lists(project, tmp_path):
    # given a folder written by datasets with a native list-of-struct votes column
    import datasets

    rows = pairwise_rows(6)
    for r in rows:
        r["votes"] = [
            {"annotator": v["annotator"], "choice": v["choice"], "strength": None, "rationale": ""} for v in r["votes"]
        ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    # when
    summary, _ = run("--project", project.slug, str(tmp_path / "ds"))
    # then
    assert summary == {"created": 6, "duplicates": 0, "votes": 0 + 1 + 2 + 3 + 0 + 1, "skipped": 0}


@pytest.mark.skipif(not PANDALM.exists(), reason=f"shared data file {PANDALM} is absent (set PANDALM_PATH)")
def test_pandalm_testset_three_annotators_with_ties(db):
    # given the PandaLM human test set: 54 rows have one empty response, 7 a non-text field
    # when imported whole, it is refused for the 7 only, counting them
    with pytest.raises(CommandError, match=r"line \d+: response1 must be a string, got bool \(7 of 999 rows"):
        run("--project", "pandalm", "--create-project", "--format", "pandalm", "--no-progress", str(PANDALM))
    # when told to skip those, everything else goes in: a response left empty is data
    summary, _ = run(
        "--project",
        "pandalm",
        "--create-project",
        "--format",
        "pandalm",
        "--skip-invalid",
        "--no-progress",
        str(PANDALM),
    )
    # then
    assert summary["skipped"] == 7 and summary["created"] + summary["duplicates"] == 992
    assert summary["votes"] == 3 * summary["created"]
    assert Pair.objects.filter(Q(response_a="") | Q(response_b="")).exists()
    assert Vote.objects.filter(choice="tie").exists()
    assert Annotator.objects.filter(external_id__startswith="pandalm-annotator").count() == 3


@pytest.mark.skipif(not HH_HARMLESS.exists(), reason=f"shared data file {HH_HARMLESS} is absent")
def test_hh_rlhf_harmless_imports_whole_without_skip_invalid(db):
    # given Anthropic HH harmless-base (2,312 rows; 4 have an empty chosen reply)
    # when imported with the defaults
    summary, _ = run("--project", "hh", "--create-project", "--no-progress", str(HH_HARMLESS))
    # then every row is a pair, the empty replies included
    assert summary == {"created": 2312, "duplicates": 0, "votes": 2312, "skipped": 0}
    assert Pair.objects.filter(Q(response_a="") | Q(response_b="")).count() == 4


@pytest.mark.skipif(not HH_HELPFUL.exists(), reason=f"shared data file {HH_HELPFUL} is absent")
def test_hh_rlhf_gzip_file(db):
    # given Anthropic HH helpful-base (2,354 rows; 4 have an empty reply, 2 have chosen == rejected)
    # when imported with the defaults, it is refused for its 2 identical rows, counting them
    with pytest.raises(CommandError, match=r"2 of 2,354 rows are invalid.*Rerun with --skip-invalid"):
        run("--project", "hh", "--create-project", "--no-progress", str(HH_HELPFUL))
    # when told to skip them, the others go in, the empty replies included
    summary, err = run("--project", "hh", "--create-project", "--skip-invalid", "--no-progress", str(HH_HELPFUL))
    assert summary["created"] == 2352 and summary["skipped"] == 2
    assert "is identical to the other response" in err
    assert Pair.objects.filter(Q(response_a="") | Q(response_b="")).count() == 4
