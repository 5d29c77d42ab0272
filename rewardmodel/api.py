"""JSON API for retraining and scoring.

POST /projects/{slug}/runs          start a run (rewardmodel.retrain); 409 + run_id if one is active
GET  /projects/{slug}/runs          runs, newest first (rewardmodel.view_dashboard)
GET  /runs/{id}                     one run: status, progress, metrics
POST /runs/{id}/cancel              (rewardmodel.retrain)
GET  /projects/{slug}/versions      model versions (rewardmodel.view_dashboard)
POST /versions/{id}/activate        promote or roll back (rewardmodel.retrain)
POST /projects/{slug}/score         rewards from the live model (rewardmodel.score)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import ValidationError

from labeling.api_auth import require_perm
from labeling.selectors import project_get
from lib.errors import PayloadTooLarge
from rewardmodel import scoring, selectors, services
from rewardmodel.errors import RunAlreadyActive
from rewardmodel.models import ModelVersion, TrainingRun

router = Router(tags=["retraining"])


class Message(Schema):
    detail: str


class PromotionOut(Schema):
    """The promotion gate's paired comparison of the new version with the live one, on the same held-out pairs."""

    n: int = Field(description="Held-out pairs both versions scored (the shared pairs).")
    candidate_accuracy: float | None = Field(description="The new version's accuracy on the shared pairs.")
    active_accuracy: float | None = Field(description="The live version's accuracy on the same pairs.")
    difference: float | None = Field(description="candidate_accuracy - active_accuracy.")
    ci: list[float] | None = Field(description="95% paired-bootstrap interval of the difference.")
    p_value: float | None = Field(description="One-sided exact McNemar p-value for 'the candidate is worse'.")
    decision: str = Field(description="promoted or refused.")
    reason: str


class RunOut(Schema):
    id: int
    project: str
    kind: str = Field(description="finetune (the whole backbone) or head (a linear head on cached features).")
    trigger: str
    status: str
    progress: float
    phase: str
    attempt: int
    cancel_requested: bool
    requested_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    n_train_pairs: int | None
    n_test_pairs: int | None
    n_votes: int | None
    label_model: str = Field(
        description="majority or dawid_skene: where the training labels came from; set with the snapshot."
    )
    snapshot_hash: str
    progress_metrics: dict[str, Any]
    metrics: dict[str, Any]
    promoted: bool | None
    promotion_note: str
    promotion: PromotionOut | None = Field(description="Null until the run has produced a version.")
    error: str
    version: int | None = Field(description="Number of the model version this run produced.")


class RunConflict(Schema):
    detail: str
    run_id: int = Field(description="The project's queued or running run.")
    status: str


class VersionOut(Schema):
    id: int
    number: int
    kind: str
    run_id: int
    is_active: bool
    metrics: dict[str, Any]
    created_at: datetime
    promoted_at: datetime | None
    promoted_by: str | None


class ScoreItem(Schema):
    prompt: str
    response: str


class ScoreIn(Schema):
    items: list[ScoreItem] = Field(min_length=1)


class ScoreOut(Schema):
    version: int = Field(description="Number of the model version that scored.")
    version_id: int
    raw: list[float]
    normalized: list[float] = Field(description="(raw - mean) / std of the held-out rewards at training time.")


def _run_out(run: TrainingRun) -> RunOut:
    version = getattr(run, "model_version", None) if run.status == TrainingRun.Status.SUCCEEDED else None
    return RunOut(
        id=run.pk,
        project=run.project.slug,
        kind=run.kind,
        trigger=run.trigger,
        status=run.status,
        progress=run.progress,
        phase=run.phase,
        attempt=run.attempt,
        cancel_requested=run.cancel_requested,
        requested_by=run.requested_by.get_username() if run.requested_by_id else None,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        heartbeat_at=run.heartbeat_at,
        n_train_pairs=run.n_train_pairs,
        label_model=run.label_model,
        n_test_pairs=run.n_test_pairs,
        n_votes=run.n_votes,
        snapshot_hash=run.snapshot_hash,
        progress_metrics=run.progress_metrics,
        metrics=run.metrics,
        promoted=run.promoted,
        promotion_note=run.promotion_note,
        promotion=PromotionOut(**run.promotion) if run.promotion else None,
        error=run.error,
        version=version.number if version else None,
    )


def _version_out(version: ModelVersion) -> VersionOut:
    return VersionOut(
        id=version.pk,
        number=version.number,
        kind=version.run.kind,
        run_id=version.run_id,
        is_active=version.is_active,
        metrics=version.metrics,
        created_at=version.created_at,
        promoted_at=version.promoted_at,
        promoted_by=version.promoted_by.get_username() if version.promoted_by_id else None,
    )


@router.post("/projects/{slug}/runs", response={202: RunOut, 400: Message, 409: RunConflict})
def run_start(request: HttpRequest, slug: str, kind: Literal["finetune", "head"] = "finetune"):
    """Queue a training run (`?kind=head` for a linear head on cached features, seconds on a CPU).
    409 names the run of that kind already queued or running."""
    require_perm(request, "rewardmodel.retrain")
    project = project_get(slug=slug)
    try:
        run = services.training_run_request(
            project=project, trigger=TrainingRun.Trigger.API, user=request.auth, kind=kind
        )
    except RunAlreadyActive as exc:
        return Status(409, RunConflict(detail=exc.message, run_id=exc.run.pk, status=exc.run.status))
    return Status(202, _run_out(run))


@router.get("/projects/{slug}/runs", response=list[RunOut])
def runs_list(request: HttpRequest, slug: str, limit: int = Query(50, ge=1, le=500)):
    require_perm(request, "rewardmodel.view_dashboard")
    project = project_get(slug=slug)
    return [_run_out(run) for run in selectors.training_run_list(project=project, limit=limit)]


@router.get("/runs/{run_id}", response=RunOut)
def run_detail(request: HttpRequest, run_id: int):
    require_perm(request, "rewardmodel.view_dashboard")
    return _run_out(selectors.training_run_get(run_id=run_id))


@router.post("/runs/{run_id}/cancel", response={200: RunOut, 409: Message})
def run_cancel(request: HttpRequest, run_id: int):
    require_perm(request, "rewardmodel.retrain")
    run = services.training_run_cancel(run=selectors.training_run_get(run_id=run_id), user=request.auth)
    return _run_out(run)


@router.get("/projects/{slug}/versions", response=list[VersionOut])
def versions_list(request: HttpRequest, slug: str):
    require_perm(request, "rewardmodel.view_dashboard")
    project = project_get(slug=slug)
    return [_version_out(v) for v in selectors.model_version_list(project=project)]


@router.post("/versions/{version_id}/activate", response={200: VersionOut, 400: Message, 409: Message})
def version_activate(request: HttpRequest, version_id: int):
    """Make this version live: a manual promotion, or a rollback to an older one."""
    require_perm(request, "rewardmodel.retrain")
    version = services.model_version_activate(
        version=selectors.model_version_get(version_id=version_id), user=request.auth
    )
    return _version_out(version)


def _score_payload(request: HttpRequest) -> ScoreIn:
    """Parse the body here rather than in Ninja, so an oversized body is a clear 413 before it is read."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    too_big = PayloadTooLarge(f"Request body over {limit:,} bytes; send fewer or shorter items per request.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if limit is not None and length > limit:
        raise too_big
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_big from None
    try:
        return ScoreIn.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _BadRequest('The body must be JSON: {"items": [{"prompt": ..., "response": ...}]}.') from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _BadRequest(f"{where}: {first['msg']}") from None


class _BadRequest(Exception):
    pass


@router.post(
    "/projects/{slug}/score",
    response={200: ScoreOut, 400: Message, 409: Message, 413: Message},
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": ScoreIn.model_json_schema()}}, "required": True}
    },
)
def score(request: HttpRequest, slug: str):
    """Rewards of responses to prompts from the project's active model, in input order.

    Capped per request by RM_SCORE_MAX_ITEMS items, RM_SCORE_MAX_CHARS
    characters and DATA_UPLOAD_MAX_MEMORY_SIZE bytes: over any of them, 413.
    """
    require_perm(request, "rewardmodel.score")
    project = project_get(slug=slug)
    try:
        payload = _score_payload(request)
    except _BadRequest as exc:
        return Status(400, Message(detail=str(exc)))
    scores = scoring.responses_score(
        project=project,
        prompts=[item.prompt for item in payload.items],
        responses=[item.response for item in payload.items],
    )
    return ScoreOut(
        version=scores.version_number, version_id=scores.version_id, raw=scores.raw, normalized=scores.normalized
    )
