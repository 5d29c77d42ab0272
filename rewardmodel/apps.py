from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RewardModelConfig(AppConfig):
    name = "rewardmodel"
    label = "rewardmodel"
    verbose_name = "Reward model"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from labeling.signals import pairs_imported
        from lib import beat
        from rewardmodel import features, schedules

        beat.periodic_tasks_register(*schedules.SCHEDULES)
        pairs_imported.connect(features.features_fill_request, dispatch_uid="rewardmodel.features_fill")
        post_migrate.connect(beat.periodic_tasks_ensure_on_migrate, dispatch_uid="lib.beat.ensure")
