from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.roles import roles_sync_on_migrate

        # Runs after every app's migrations; permissions exist by then.
        post_migrate.connect(roles_sync_on_migrate, dispatch_uid="accounts.roles_sync")
