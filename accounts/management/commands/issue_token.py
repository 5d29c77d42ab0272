"""`manage.py issue_token --user U --name N`: print a new API token, once.

Only its hash is stored; the token acts as the user, with the user's
permissions (e.g. rewardmodel.score for the scoring API).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_issue
from lib.errors import ServiceError


class Command(BaseCommand):
    help = "Issue an API bearer token for a user and print it (it is not shown again)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="Username the token acts as.")
        parser.add_argument("--name", required=True, help="What the token is for, e.g. 'scoring service'.")

    def handle(self, *args, user: str, name: str, **options):
        found = get_user_model().objects.filter(username=user, is_active=True).first()
        if found is None:
            raise CommandError(f"No active user {user!r}.")
        try:
            token, raw = api_token_issue(user=found, name=name)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"Token {token.prefix}… ({token.name}) for {found.get_username()}; store it now:")
        self.stdout.write(raw)
