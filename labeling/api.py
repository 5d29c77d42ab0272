"""JSON API for labeling clients: list projects, lease the next pair, vote, skip, undo;
and for admins, create projects and manage their members.

Texts come back raw, not rendered: a client renders (and sanitises) them
itself. Choices are in screen terms (left/right), as the client showed them.
A client may vote and get its next pair in one request (`vote-and-next`),
as the labeling page does: half the requests per pair.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from labeling import selectors, services
from labeling.api_auth import require_perm
from labeling.models import Assignment, Project
from lib.errors import NotFound

router = Router(tags=["labeling"])


class ProjectOut(Schema):
    slug: str
    name: str
    overlap_target: int
    choices: list[str]
    ask_strength: bool
    ask_rationale: bool


class NextOut(Schema):
    assignment_id: int
    prompt: str
    left: str
    right: str
    expires_at: datetime
    choices: list[str]


class VoteIn(Schema):
    choice: Literal["left", "right", "tie", "both_bad"]
    strength: int | None = Field(None, ge=1, le=3)
    rationale: str = Field("", max_length=5000)
    latency_ms: int | None = Field(None, ge=0, description="Client-measured time to decide; capped by the server's.")


class VoteOut(Schema):
    vote_id: int
    choice: str = Field(description="In pair terms: a, b, tie or both_bad.")
    shown_left: str
    created: bool


class VoteAndNextOut(Schema):
    vote: VoteOut
    next: NextOut | None = Field(description="The next pair leased to you; null when nothing is left for you.")
    detail: str | None = Field(
        None, description="Why `next` is null when it is not that nothing is left: you are paused on the project."
    )


class Message(Schema):
    detail: str


class UndoneOut(NextOut):
    previous_choice: str = Field(description="The undone vote's choice, in the same screen terms.")
    previous_strength: int | None
    previous_rationale: str


class ProjectIn(Schema):
    slug: str = Field(description="Letters, digits, - and _; in every URL of the project, fixed once created.")
    name: str = Field(max_length=200)
    instructions: str = Field("", description="Markdown, shown above every pair.")
    overlap: int | None = Field(None, ge=1, le=25, description="Votes wanted per pair (K); default 3.")
    test_percent: int | None = Field(
        None,
        ge=0,
        le=90,
        description="Share of prompts held out for evaluation, fixed once the project has pairs; default 20.",
    )
    gold_percent: int | None = Field(None, ge=0, le=100, description="Share of pairs served that are gold; default 5.")
    repeat_percent: int | None = Field(None, ge=0, le=50, description="Share served as repeat checks; default 3.")
    gold_pause_below: float | None = Field(
        None, ge=0, le=1, description="Pause when the gold accuracy's 95% upper bound is below this; default 0.6."
    )
    gold_min_votes: int | None = Field(None, ge=1, description="Gold votes before a pause can happen; default 10.")


class MembersIn(Schema):
    usernames: list[str] = Field(min_length=1, max_length=1000, description="Usernames (or email addresses).")


class MembersOut(Schema):
    added: list[str]
    already_members: list[str]
    cannot_label: list[str] = Field(description="Members without the annotator role: they cannot label until given it.")
    members: list[str]


def _project_out(project) -> ProjectOut:
    return ProjectOut(
        slug=project.slug,
        name=project.name,
        overlap_target=project.overlap_target,
        choices=project.choices,
        ask_strength=project.ask_strength,
        ask_rationale=project.ask_rationale,
    )


@router.get("/projects", response=list[ProjectOut])
def projects_list(request: HttpRequest):
    return [_project_out(p) for p in selectors.project_list_for_user(user=request.auth)]


@router.post("/projects", response={201: ProjectOut, 400: Message, 409: Message})
def project_create(request: HttpRequest, payload: ProjectIn):
    """Create a project (admins). 409 when the slug is taken; 400 for a value the project refuses."""
    require_perm(request, "labeling.add_project")
    options = {"instructions": payload.instructions}
    if payload.overlap is not None:
        options["overlap_target"] = payload.overlap
    if payload.test_percent is not None:
        options["test_percent"] = payload.test_percent
    for name in ("gold_percent", "repeat_percent", "gold_pause_below", "gold_min_votes"):
        if getattr(payload, name) is not None:
            options[name] = getattr(payload, name)
    project = services.project_create(slug=payload.slug, name=payload.name, **options)
    return Status(201, _project_out(project))


@router.post("/projects/{slug}/members", response={200: MembersOut, 400: Message, 404: Message})
def project_members_add(request: HttpRequest, slug: str, payload: MembersIn):
    """Add members by username, all or none: one unknown name is a 400 that adds nobody."""
    require_perm(request, "labeling.change_project")
    project = selectors.project_get(slug=slug)
    added = services.project_members_add(project=project, names=payload.usernames)
    return MembersOut(
        added=added.added,
        already_members=added.already_members,
        cannot_label=added.cannot_label,
        members=selectors.project_member_names(project=project),
    )


@router.delete("/projects/{slug}/members/{username}", response={204: None, 404: Message})
def project_member_remove(request: HttpRequest, slug: str, username: str):
    """Take a member off the project; their votes stay, a pair leased to them goes back to the pool."""
    require_perm(request, "labeling.change_project")
    services.project_member_remove(project=selectors.project_get(slug=slug), username=username)
    return HttpResponse(status=204)


class ReinstateIn(Schema):
    reason: str = Field(min_length=1, max_length=2000, description="Why: recorded with who and when.")


class StandingOut(Schema):
    annotator: str
    paused: bool
    paused_at: datetime | None
    pause_reason: str
    reinstated_at: datetime | None
    reinstated_by: str | None
    reinstate_reason: str


@router.post(
    "/projects/{slug}/annotators/{username}/reinstate",
    response={200: StandingOut, 400: Message, 404: Message, 409: Message},
)
def annotator_reinstate(request: HttpRequest, slug: str, username: str, payload: ReinstateIn):
    """Lift an annotator's automatic pause (admins), with a recorded reason. 409 when they are not paused."""
    require_perm(request, "labeling.change_project")
    project = selectors.project_get(slug=slug)
    annotator = selectors.annotator_by_username(username=username)
    standing = services.annotator_reinstate(
        project=project, annotator=annotator, by=request.auth, reason=payload.reason
    )
    return StandingOut(
        annotator=username,
        paused=standing.paused_at is not None,
        paused_at=standing.paused_at,
        pause_reason=standing.pause_reason,
        reinstated_at=standing.reinstated_at,
        reinstated_by=standing.reinstated_by.get_username() if standing.reinstated_by else None,
        reinstate_reason=standing.reinstate_reason,
    )


def _next_out(assignment: Assignment, project: Project) -> NextOut:
    pair = assignment.pair
    texts = {"a": pair.response_a, "b": pair.response_b}
    return NextOut(
        assignment_id=assignment.pk,
        prompt=pair.prompt,
        left=texts[assignment.left],
        right=texts[assignment.right],
        expires_at=assignment.expires_at,
        choices=project.choices,
    )


def _vote_out(vote, created: bool) -> VoteOut:
    return VoteOut(vote_id=vote.pk, choice=vote.choice, shown_left=vote.shown_left, created=created)


def _vote_submit(request: HttpRequest, assignment_id: int, payload: VoteIn):
    require_perm(request, "labeling.label_pairs")
    return services.vote_submit(
        assignment_id=assignment_id,
        user=request.auth,
        choice=payload.choice,
        strength=payload.strength,
        rationale=payload.rationale,
        latency_ms=payload.latency_ms,
    )


@router.get("/projects/{slug}/next", response={200: NextOut, 204: None, 403: Message})
def next_pair(request: HttpRequest, slug: str):
    """Lease the next pair to label. 204 when nothing is left for you; 403, with a message saying why and
    whom to contact, when you are paused on the project (your answers to its check pairs)."""
    require_perm(request, "labeling.label_pairs")
    project = selectors.project_get_for_labeling(user=request.auth, slug=slug)
    assignment = services.assignment_next(project=project, user=request.auth)
    if assignment is None:
        return Status(204, None)
    return _next_out(assignment, project)


@router.post("/assignments/{assignment_id}/vote", response={200: VoteOut, 201: VoteOut, 409: Message})
def vote(request: HttpRequest, assignment_id: int, payload: VoteIn):
    """Vote on a leased pair: 201 when stored, 200 when this vote was already stored (a retry)."""
    vote, created = _vote_submit(request, assignment_id, payload)
    return Status(201 if created else 200, _vote_out(vote, created))


@router.post(
    "/assignments/{assignment_id}/vote-and-next", response={200: VoteAndNextOut, 201: VoteAndNextOut, 409: Message}
)
def vote_and_next(request: HttpRequest, assignment_id: int, payload: VoteIn):
    """Vote, then lease the next pair of the same project, in one request.

    The vote is handled as by `vote` (a refused vote writes nothing and leases
    nothing). A retry returns the stored vote and the same next lease, since
    asking again for the next pair returns one's live lease.
    """
    vote, created = _vote_submit(request, assignment_id, payload)
    try:
        project = selectors.project_get_for_labeling(user=request.auth, project_id=vote.project_id)
    except NotFound:  # taken off the project since this lease: the vote stands, nothing more for them here
        assignment = None
    else:
        try:
            assignment = services.assignment_next(project=project, user=request.auth)
        except services.AnnotatorPaused as exc:  # the vote stands; it may be the one that paused them
            return Status(
                201 if created else 200, VoteAndNextOut(vote=_vote_out(vote, created), next=None, detail=exc.message)
            )
    following = None if assignment is None else _next_out(assignment, project)
    return Status(201 if created else 200, VoteAndNextOut(vote=_vote_out(vote, created), next=following))


@router.post("/assignments/{assignment_id}/skip", response={204: None, 409: Message})
def skip(request: HttpRequest, assignment_id: int):
    require_perm(request, "labeling.label_pairs")
    services.assignment_skip(assignment_id=assignment_id, user=request.auth)
    return HttpResponse(status=204)


@router.delete("/assignments/{assignment_id}/vote", response={200: UndoneOut, 409: Message})
def vote_undo(request: HttpRequest, assignment_id: int):
    """Undo your vote on this pair within the undo window (default 10 minutes).

    The pair is leased to you again, answered as `next` answers, with the
    undone vote beside it; vote on it as on any lease. 409 after the window,
    or when there is no vote of yours on it.
    """
    require_perm(request, "labeling.label_pairs")
    undone = services.vote_undo(assignment_id=assignment_id, user=request.auth)
    lease = _next_out(undone.assignment, undone.assignment.project)
    return UndoneOut(
        **lease.model_dump(),
        previous_choice=undone.choice,
        previous_strength=undone.strength,
        previous_rationale=undone.rationale,
    )
