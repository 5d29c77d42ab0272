from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RewardModelConfig(AppConfig):
    name = "rewardmodel"
    label = "rewardmodel"
    verbose_name = "Reward model"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from labeling.signals import pairs_imported, project_form_sections
        from lib import beat
        from rewardmodel import features, forms, schedules

        # The retrain policy is a section of labeling's project form (labeling.forms).
        project_form_sections.connect(forms.on_project_form_sections, dispatch_uid="rewardmodel.policy_section")
        beat.periodic_tasks_register(*schedules.SCHEDULES)
        pairs_imported.connect(features.features_fill_request, dispatch_uid="rewardmodel.features_fill")
        post_migrate.connect(beat.periodic_tasks_ensure_on_migrate, dispatch_uid="lib.beat.ensure")
