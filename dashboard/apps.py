from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # labeling and rewardmodel never import the dashboard: they announce
        # what happened, and the dashboard keeps its aggregates from that.
        from dashboard import aggregates, schedules, selectors
        from labeling.signals import annotator_figures_wanted, votes_imported
        from lib import beat
        from rewardmodel.signals import version_activated, version_predictions_added

        votes_imported.connect(aggregates.on_votes_imported, dispatch_uid="dashboard.fold_imported_votes")
        version_activated.connect(aggregates.on_version_activated, dispatch_uid="dashboard.version_activated")
        version_predictions_added.connect(
            aggregates.on_version_predictions_added, dispatch_uid="dashboard.version_predictions_added"
        )
        annotator_figures_wanted.connect(selectors.annotator_own_figures, dispatch_uid="dashboard.own_figures")
        beat.periodic_tasks_register(*schedules.SCHEDULES)
        post_migrate.connect(beat.periodic_tasks_ensure_on_migrate, dispatch_uid="lib.beat.ensure")
