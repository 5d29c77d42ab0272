"""GET /api/v1/projects/{slug}/metrics: every dashboard figure, checked against the reference packages."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa

from accounts import services as account_services
from labeling import services
from labeling.models import Vote
from preferences.formats import RowError, parse_row
from preferences.records import ImportedVote, PreferenceRecord
from tests.dashboard.dashboard_data import populate

URL = "/api/v1/projects/{}/metrics"
REPO = Path(__file__).resolve().parents[2]
PANDALM_PATH = Path(os.environ.get("PANDALM_PATH", REPO.parent / "shared" / "data" / "pandalm-testset-v1.json"))
CODE = {"a": 0, "b": 1, "tie": 2, "both_bad": 2}


def reference_figures(project) -> tuple[float, float | None]:
    """Krippendorff's alpha and (when every pair has the same number of votes) Fleiss' kappa,
    computed by the reference packages straight from the vote table."""
    votes = list(Vote.objects.filter(project=project).values_list("pair_id", "annotator_id", "choice"))
    pairs = sorted({p for p, _, _ in votes})
    raters = sorted({a for _, a, _ in votes})
    data = np.full((len(raters), len(pairs)), np.nan)
    table = np.zeros((len(pairs), 3))
    for p, a, c in votes:
        data[raters.index(a), pairs.index(p)] = CODE[c]
        table[pairs.index(p), CODE[c]] += 1
    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    sizes = set(table.sum(1))
    kappa = fleiss_kappa(table, method="fleiss") if len(sizes) == 1 else None
    return alpha, kappa


def test_reviewer_gets_every_figure(client, project, django_user_model, reviewer_user):
    # given a project with votes and an active version
    populate(project, django_user_model)
    client.force_login(reviewer_user)
    # when a reviewer asks for the metrics
    response = client.get(URL.format(project.slug))
    # then every figure of the page is there, each with its CI and sample size
    assert response.status_code == 200
    body = response.json()
    for key in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "model_vs_human", "human_ceiling"):
        assert set(body[key]) >= {"value", "ci", "n"}
        assert body[key]["value"] is not None and len(body[key]["ci"]) == 2
    for key in (
        "model_vs_ceiling",
        "annotators",
        "versions",
        "red_flags",
        "learning_curve",
        "calibration",
        "length_buckets",
        "votes_per_pair",
        "sample",
        "active_version",
    ):
        assert key in body
    assert [v["number"] for v in body["versions"]] == [1, 2]
    assert body["model_vs_ceiling"]["higher"] in ("model", "humans", "equal")
    # and the agreement figures equal the reference packages on the same votes
    alpha, _ = reference_figures(project)
    assert body["krippendorff_alpha"]["value"] == pytest.approx(alpha, abs=1e-9)


def test_annotators_and_anonymous_are_refused(client, project, annotator_user):
    assert client.get(URL.format(project.slug)).status_code == 401
    client.force_login(annotator_user)
    assert client.get(URL.format(project.slug)).status_code == 403


def test_bearer_token_of_an_admin_works_and_paging_is_bounded(client, project, django_user_model, admin_user):
    populate(project, django_user_model)
    _, raw = account_services.api_token_issue(user=admin_user, name="ci")
    response = client.get(URL.format(project.slug) + "?per_page=2&page=2", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert response.json()["annotators"]["page"] == 2 and len(response.json()["annotators"]["rows"]) == 2
    assert (
        client.get(URL.format(project.slug) + "?per_page=100000", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 422
    )
    assert client.get(URL.format("missing"), HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 404


def test_figures_match_packages_with_ties_and_missing_votes(client, project, reviewer_user):
    # given five raters who each skip some pairs, with ties and both-bad votes
    rng = random.Random(5)
    records = []
    for i in range(120):
        truth = rng.choice("ab")
        voters = rng.sample(range(5), rng.randint(1, 5))
        votes = tuple(
            ImportedVote(f"r{k}", truth if rng.random() < 0.7 else rng.choice(["a", "b", "tie", "both_bad"]))
            for k in voters
        )
        records.append(PreferenceRecord(prompt=f"q{i}", response_a=f"a{i}", response_b=f"b{i}", votes=votes))
    services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    client.force_login(reviewer_user)
    # when the metrics are read
    body = client.get(URL.format(project.slug)).json()
    # then alpha is the krippendorff package's, over the pairs with 2+ votes
    alpha, _ = reference_figures(project)
    assert body["krippendorff_alpha"]["value"] == pytest.approx(alpha, abs=1e-9)
    assert body["krippendorff_alpha"]["n"] == sum(1 for r in records if len(r.votes) >= 2)
    lo, hi = body["krippendorff_alpha"]["ci"]
    assert lo < alpha < hi


def test_pandalm_import_matches_krippendorff_and_statsmodels(client, project, reviewer_user):
    # given the PandaLM human test set (3 annotators per pair, with ties)
    if not PANDALM_PATH.exists():
        pytest.skip(f"PandaLM test set not found at {PANDALM_PATH}; set PANDALM_PATH to run this test")
    records = []
    for row in json.loads(PANDALM_PATH.read_text()):
        try:
            records.append(parse_row(row, "pandalm"))
        except RowError:
            continue  # a few rows have an empty response; the importer skips them the same way
    services.pairs_import_batch(project=project, records=records, shuffle_sides=False)
    client.force_login(reviewer_user)
    # when the dashboard figures are read
    body = client.get(URL.format(project.slug)).json()
    # then they equal the reference packages on the same stored votes
    alpha, kappa = reference_figures(project)
    assert kappa is not None  # every pair has exactly three votes
    assert body["krippendorff_alpha"]["value"] == pytest.approx(alpha, abs=1e-9)
    assert body["fleiss_kappa"]["value"] == pytest.approx(kappa, abs=1e-9)
    assert body["sample"]["mean_votes_per_pair"] == 3.0
    # and pairwise agreement is the ~0.92 its authors report
    assert 0.88 < body["percent_agreement"]["value"] < 0.95
