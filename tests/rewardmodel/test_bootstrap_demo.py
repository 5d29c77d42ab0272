"""`manage.py bootstrap_demo`: the demo users and project that `make run` starts with."""

from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command

from labeling.demo import demo_triples
from labeling.models import Project, Vote
from rewardmodel.models import RetrainPolicy


def password_works(username: str, password: str) -> bool:
    return get_user_model().objects.get(username=username).check_password(password)


def run_bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    return out.getvalue()


def test_creates_users_in_their_roles_and_prints_passwords_once(db, monkeypatch):
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("DEMO_ANNOTATOR_PASSWORD", "from-the-env-123")
    first = run_bootstrap()
    second = run_bootstrap()
    users = {u.username: u for u in get_user_model().objects.all()}
    assert {n: [g.name for g in u.groups.all()] for n, u in users.items()} == {
        "admin": ["admin"],
        "reviewer": ["reviewer"],
        "annotator": ["annotator"],
    }
    assert users["admin"].is_superuser and not users["reviewer"].is_staff
    # a generated password is printed once, and works
    line = next(x for x in first.splitlines() if "'reviewer'" in x)
    assert password_works("reviewer", line.rsplit(": ", 1)[1])
    assert "password:" not in second
    # a password from the environment is used, never printed
    assert password_works("annotator", "from-the-env-123")
    assert "from-the-env-123" not in first


def test_imports_the_demo_project_idempotently(db):
    run_bootstrap()
    run_bootstrap()
    project = Project.objects.get(slug="demo")
    assert project.pairs.count() == len(demo_triples())
    assert Vote.objects.filter(project=project).count() > 0
    assert project.members.filter(username="annotator").exists()
    policy = RetrainPolicy.objects.get(project=project)
    assert (policy.min_new_votes, policy.head_enabled, policy.head_min_new_votes) == (50, True, 20)
    # every demo pair has a clearly better side: the simulated majority agrees with it
    # on most voted pairs
    agree = sum(1 for p in project.pairs.all() if p.vote_count and (p.votes_a != p.votes_b))
    assert agree >= 20
    # and a few unvoted factual pairs are gold pairs, whose answer is the better side
    gold = list(project.pairs.exclude(gold=""))
    assert len(gold) >= 3 and all(p.vote_count == 0 for p in gold)
    better = {prompt: good for prompt, good, _ in demo_triples()}
    assert all((p.response_a if p.gold == "a" else p.response_b) == better[p.prompt] for p in gold)
