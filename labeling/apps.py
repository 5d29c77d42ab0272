from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LabelingConfig(AppConfig):
    name = "labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from labeling import schedules
        from lib import beat

        beat.periodic_tasks_register(*schedules.SCHEDULES)
        post_migrate.connect(beat.periodic_tasks_ensure_on_migrate, dispatch_uid="lib.beat.ensure")
