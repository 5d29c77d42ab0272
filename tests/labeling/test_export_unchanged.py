"""Exports of the same data are byte-identical across refactors.

The digests below were taken with the code before the preference core
moved out of labeling and the trainer (commit 87027e8), on the fixture in
export_fixture.py. A change to an export format must change them on
purpose, with a note in docs/import_export.md.
"""

from __future__ import annotations

import hashlib

import pytest

from labeling import services
from labeling.exporting import export_to_path
from preferences.records import ImportedVote, PreferenceRecord
from tests.labeling.export_fixture import CASES, fixture_records

EXPECTED: dict[str, str] = {
    "pairwise-all.csv": "2ca9ed4145b478d0cba72ae6aa7f8eae03180821b23bcce4a47f4f1d58a4900c",
    "pairwise-all.jsonl": "892eba9ba25f6b8141536aab7862c26bae8f0aee3b18dad213be890917e33f13",
    "pairwise-all.parquet": "e8cb7e773620ad4636c6388d086c507df345ee5280b763b276f8e3a28959fe73",
    "pairwise-test.csv": "ba3cbe82de970129ef7a45b8ebb4c06d081a3e26e5e9509668db17f86d786940",
    "pairwise-test.jsonl": "ee89349d3d68f88bb13b322872a862628cde2b957778b4397a85ab706cab465d",
    "pairwise-test.parquet": "dd8a4ffa1687b8d17e2c7c827c325f20c1e4ce2856e57a2f86d6093266c39b88",
    "pairwise-train.csv": "348b8f64dbb069f1358b89e1591ee84287c85d251e7d1d83ead341d52e4e9e92",
    "pairwise-train.jsonl": "b67485b138f0c18a9b7b9ee8384d67059180d0612e83e370ade222c7d673feeb",
    "pairwise-train.parquet": "b3f88dc9f0d8397b50c8432966236ebb2e74f8bb77e655812c4df05d86cb73c3",
    "trl-all.csv": "25bba4270fade724d1aac73a3e3574c063e1121c4768349f739b6e0aef9f084e",
    "trl-all.jsonl": "25b0c62161c46ac4f02d0bcb4e3c1c8b928c81a6b66b80619415b0fa232b3634",
    "trl-all.parquet": "76750abc99516199608049f85a835a836d5ddcfa7d39fc0e9b6c8f9b78e8f65d",
    "trl-test.csv": "5350d80369fce8380cce0e592c7766c19ccf03f83e4cc014b0f70f28beb985f8",
    "trl-test.jsonl": "7ff3577d0b02c0f14eb5ee0167e14f6549d7663a1afbae44be539bcfd15c3148",
    "trl-test.parquet": "1083aeb414c7110c894b6393e6790d4fd7783ef3cdbb9bf21bf1c653db10b1aa",
    "trl-train.csv": "3f3145d13cf21243dba8dbecb77f9e6bfd20c6a5d995cb46439a3e2f7902edbd",
    "trl-train.jsonl": "9566e7813ca04ba633d3dbeef0ec45b7ee0404a944464a35666d57a7c41691bd",
    "trl-train.parquet": "78faa62ca5698eb3b8ebbe3140c1658b1a467ddf706b19d3f10f00c13ebba384",
}


@pytest.fixture
def fixture_project(db, settings):
    settings.SECRET_KEY = "a-fixed-key-for-the-export-digests"
    project = services.project_create(slug="frozen", name="Frozen", test_percent=40)
    services.pairs_import_batch(
        project=project, records=fixture_records(PreferenceRecord, ImportedVote), shuffle_sides=True
    )
    return project


def export_digests(project, folder) -> dict[str, str]:
    out = {}
    for fmt, split, kind in CASES:
        path = folder / f"{fmt}-{split}.{kind}"
        export_to_path(project=project, fmt=fmt, split=split, path=path)
        out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_exports_are_byte_identical_to_the_recorded_ones(fixture_project, tmp_path):
    assert export_digests(fixture_project, tmp_path) == EXPECTED
