"""Create the demo users and the demo project (idempotent): what `make run` starts with.

Passwords come from DEMO_ADMIN_PASSWORD, DEMO_REVIEWER_PASSWORD and
DEMO_ANNOTATOR_PASSWORD when set; otherwise a random one is generated and
printed once, when the user is created. Later runs leave existing users
alone unless a password is given in the environment.

It lives here, above labeling, because it wires three apps: the users
(accounts), the project and its pairs (labeling) and its retrain policy.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.services import DEMO_USERS, user_ensure
from labeling import services
from labeling.demo import DEMO_INSTRUCTIONS, DEMO_NAME, DEMO_SLUG, demo_records
from labeling.models import Project
from rewardmodel.services import retrain_policy_update

# Heads (seconds on a CPU) retrain after every 20 new votes, the policy's
# default; the demo's fine-tune, which takes minutes on a CPU, after 50.
DEMO_FINETUNE_AFTER_VOTES = 50


class Command(BaseCommand):
    help = "Create demo users (admin, reviewer, annotator) and import the demo project."

    def handle(self, *args, **options) -> None:
        users = {}
        with transaction.atomic():
            for username, role, env_var in DEMO_USERS:
                users[username] = self._ensure_user(username, role, os.environ.get(env_var))
            project = Project.objects.filter(slug=DEMO_SLUG).first()
            if project is None:
                project = services.project_create(
                    slug=DEMO_SLUG,
                    name=DEMO_NAME,
                    instructions=DEMO_INSTRUCTIONS,
                    allow_tie=True,
                    allow_both_bad=True,
                )
            project.members.add(users["annotator"])
        counts = services.pairs_import_batch(project=project, records=demo_records(), shuffle_sides=False)
        retrain_policy_update(project=project, min_new_votes=DEMO_FINETUNE_AFTER_VOTES)
        self.stdout.write(
            f"Demo project '{DEMO_SLUG}': {counts.created} pairs created, {counts.duplicates} already there, "
            f"{counts.votes} simulated votes."
        )

    def _ensure_user(self, username: str, role: str, password: str | None):
        user, created, shown = user_ensure(username=username, role=role, password=password)
        if shown:
            self.stdout.write(self.style.WARNING(f"  created user {username!r} ({role}) with password: {shown}"))
        elif created:
            self.stdout.write(f"  created user {username!r} ({role}), password from the environment")
        return user
