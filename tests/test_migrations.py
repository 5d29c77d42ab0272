"""Models moved between apps keep their tables, rows and permissions.

A database migrated and filled at the schema of the last release before the
move (tokens and the dashboard aggregates in labeling) is migrated forward;
every row must come through, now owned by accounts and dashboard, and a
group's token permissions must survive the move.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The last migrations before the models moved (labeling 0005 moves them out).
BEFORE_THE_MOVE = [
    ("labeling", "0004_vote_fold_queue"),
    ("rewardmodel", "0004_fold_schedule"),
    ("accounts", None),
    ("dashboard", None),
]


def _migrate(targets):
    """Migrate to `targets` (other apps stay at their latest); the historical models there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    named = {app for app, _ in targets}
    nodes = [t for t in targets if t[1] is not None]
    nodes += [leaf for leaf in executor.loader.graph.leaf_nodes() if leaf[0] not in named]
    return executor.loader.project_state(nodes).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _fill(apps) -> dict:
    """Users, a project, pairs, votes, a token, aggregates, a run, a version and a prediction, at the old schema."""
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    Project = apps.get_model("labeling", "Project")
    Pair = apps.get_model("labeling", "Pair")
    Annotator = apps.get_model("labeling", "Annotator")
    Vote = apps.get_model("labeling", "Vote")

    # the content types and permissions an old deployment had for the models that move
    moved = {"labeling": ["apitoken", "tallybucket", "annotatorstats", "projectstats"]}
    ContentType.objects.filter(app_label__in=["accounts", "dashboard"]).delete()
    for model in moved["labeling"]:
        ct, _ = ContentType.objects.get_or_create(app_label="labeling", model=model)
        for action in ("add", "change", "delete", "view"):
            Permission.objects.get_or_create(
                content_type=ct, codename=f"{action}_{model}", defaults={"name": f"Can {action} {model}"}
            )
    token_admins = Group.objects.create(name="token-admins")
    token_admins.permissions.add(Permission.objects.get(content_type__app_label="labeling", codename="add_apitoken"))

    user = User.objects.create(username="old-admin")
    project = Project.objects.create(slug="old", name="Old")
    annotator = Annotator.objects.create(user=user)
    pairs = [
        Pair.objects.create(
            project=project,
            prompt=f"p{i}",
            response_a="a",
            response_b="b",
            content_hash=f"h{i}",
            split="test" if i % 2 else "train",
            rank=i,
            vote_count=1,
            slots_taken=1,
            votes_a=1,
        )
        for i in range(4)
    ]
    for pair in pairs:
        Vote.objects.create(project=project, pair=pair, annotator=annotator, choice="a", in_aggregates=True)
    apps.get_model("labeling", "ApiToken").objects.create(user=user, name="ci", prefix="rmt_abc", key_hash="k" * 64)
    apps.get_model("labeling", "TallyBucket").objects.create(
        project=project, split="train", n_a=1, n_b=0, n_tie=0, pairs=2
    )
    apps.get_model("labeling", "AnnotatorStats").objects.create(
        project=project,
        annotator=annotator,
        votes=4,
        decisive=4,
        latency_hist={"3": 4},
        flags=["too_fast"],
        flag_count=1,
    )
    run = apps.get_model("rewardmodel", "TrainingRun").objects.create(
        project=project, trigger="cli", status="succeeded"
    )
    version = apps.get_model("rewardmodel", "ModelVersion").objects.create(
        project=project, run=run, number=1, artifact_dir="/nowhere", is_active=True, metrics={"held_out_accuracy": 1}
    )
    apps.get_model("rewardmodel", "PairPrediction").objects.create(version=version, pair=pairs[1], margin=0.5)
    apps.get_model("labeling", "ProjectStats").objects.create(
        project=project, active_version_id=version.pk, model_n=2, model_agree=1, loo_n=3, loo_agree=2
    )
    return {"project": project.pk, "version": version.pk}


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_migrating_forward_keeps_every_row_and_permission():
    from django.contrib.auth.models import Group

    from accounts.models import ApiToken
    from dashboard.models import AnnotatorStats, ProjectStats, TallyBucket
    from labeling.models import Pair, Vote
    from rewardmodel.models import ModelVersion, PairPrediction

    # given a database at the schema before the move, with data in every moved table
    old_apps = _migrate(BEFORE_THE_MOVE)
    ids = _fill(old_apps)
    try:
        # when it is migrated forward
        _migrate(_latest())
        # then every row is there, read through the models' new homes
        token = ApiToken.objects.get()
        assert (token.name, token.prefix, token.user.username) == ("ci", "rmt_abc", "old-admin")
        assert list(TallyBucket.objects.values_list("split", "n_a", "pairs")) == [("train", 1, 2)]
        stats = AnnotatorStats.objects.get()
        assert (stats.votes, stats.latency_hist, stats.flags) == (4, {"3": 4}, ["too_fast"])
        project_stats = ProjectStats.objects.get()
        assert (project_stats.active_version_id, project_stats.model_agree, project_stats.loo_n) == (
            ids["version"],
            1,
            3,
        )
        assert Pair.objects.filter(project_id=ids["project"]).count() == 4 and Vote.objects.count() == 4
        assert ModelVersion.objects.get().is_active and PairPrediction.objects.get().margin == 0.5
        # and the group that could issue tokens still can, under the model's new app
        perms = {
            f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="token-admins").permissions.all()
        }
        assert perms == {"accounts.add_apitoken"}
    finally:
        _migrate(_latest())
