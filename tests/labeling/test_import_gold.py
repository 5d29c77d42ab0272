"""Importing gold pairs: `import_pairs --gold` and the upload form's box, for TRL files only."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import ImportJob, Pair, Vote


def trl_lines(n: int) -> str:
    return "".join(
        json.dumps({"prompt": f"Q{i}", "chosen": f"right answer {i}", "rejected": f"wrong {i}"}) + "\n"
        for i in range(n)
    )


def test_import_command_gold_marks_every_trl_row(tmp_path, project):
    path = tmp_path / "gold.jsonl"
    path.write_text(trl_lines(20), encoding="utf-8")
    out = io.StringIO()
    call_command("import_pairs", str(path), "--project", project.slug, "--gold", stdout=out, stderr=io.StringIO())
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["created"] == 20 and summary["votes"] == 0
    for pair in Pair.objects.filter(project=project):
        assert (pair.response_a if pair.gold == "a" else pair.response_b).startswith("right answer")
    assert not Vote.objects.exists()


def test_import_command_refuses_gold_for_other_formats_and_writes_nothing(tmp_path, project):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "Q", "response_a": "A", "response_b": "B"}) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match="TRL"):
        call_command("import_pairs", str(path), "--project", project.slug, "--gold", stderr=io.StringIO())
    assert not Pair.objects.exists()


def test_upload_form_gold_box(client, admin_user, project, settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    client.force_login(admin_user)
    client.post(
        reverse("project-import", args=[project.slug]),
        {"file": SimpleUploadedFile("g.jsonl", trl_lines(4).encode()), "format": "auto", "gold": "on"},
    )
    job = ImportJob.objects.get()
    assert job.gold and job.status == ImportJob.Status.SUCCEEDED
    assert Pair.objects.filter(project=project).exclude(gold="").count() == 4
    assert "gold pairs" in client.get(reverse("import-job", args=[job.pk])).content.decode()
