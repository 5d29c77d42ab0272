"""Admin for retraining: policies are edited here; runs and versions are
read-only records, with actions that go through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from lib.errors import ServiceError
from rewardmodel import retention, services
from rewardmodel.models import ModelVersion, RetrainPolicy, TrainingRun
from rewardmodel.run_config import train_config_error


class RetrainPolicyForm(forms.ModelForm):
    class Meta:
        model = RetrainPolicy
        fields = ["project", "enabled", "min_new_votes", "max_interval_hours", "promotion_delta", "train_config"]

    def clean_train_config(self):
        value = self.cleaned_data["train_config"]
        error = train_config_error(policy_overrides=value)
        if error:
            raise forms.ValidationError(error)
        return value


@admin.register(RetrainPolicy)
class RetrainPolicyAdmin(admin.ModelAdmin):
    form = RetrainPolicyForm
    list_display = (
        "project",
        "enabled",
        "paused_at",
        "min_new_votes",
        "max_interval_hours",
        "promotion_delta",
        "updated_at",
    )
    list_filter = ("enabled",)
    # Set by the scheduler after repeated failures; lifted with the action (or the runs page's button).
    readonly_fields = ("paused_at", "pause_reason", "resumed_at")
    actions = ["resume"]

    @admin.action(description="Resume automatic retraining of the selected paused policies")
    def resume(self, request, queryset):
        for policy in queryset.filter(paused_at__isnull=False).select_related("project"):
            services.retrain_policy_resume(project=policy.project, user=request.user)
            self.message_user(request, f"Automatic retraining of {policy.project} resumed.", messages.SUCCESS)


class _RetrainPermissionMixin:
    def has_retrain_permission(self, request) -> bool:
        return request.user.has_perm("rewardmodel.retrain")


@admin.register(TrainingRun)
class TrainingRunAdmin(_RetrainPermissionMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "trigger",
        "status",
        "progress",
        "attempt",
        "promoted",
        "created_at",
        "finished_at",
        "worker_host",
    )
    list_filter = ("status", "trigger", "project")
    actions = ["cancel_runs"]

    def has_add_permission(self, request):
        return False  # runs start from the runs page, the API, `manage.py retrain` or the schedule

    def has_change_permission(self, request, obj=None):
        return False  # a record of what happened; status changes go through the services

    @admin.action(description="Cancel the selected runs", permissions=["retrain"])
    def cancel_runs(self, request, queryset):
        for run in queryset:
            try:
                services.training_run_cancel(run=run, user=request.user)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.WARNING)


@admin.register(ModelVersion)
class ModelVersionAdmin(_RetrainPermissionMixin, admin.ModelAdmin):
    list_display = (
        "project",
        "number",
        "is_active",
        "held_out_accuracy",
        "pinned",
        "pruned_at",
        "created_at",
        "promoted_by",
        "promoted_at",
    )
    list_filter = ("project", "is_active", "pinned")
    actions = ["make_live", "pin", "unpin"]

    @admin.display(description="held-out accuracy")
    def held_out_accuracy(self, obj: ModelVersion):
        value = obj.metrics.get("held_out_accuracy")
        return f"{value:.3f}" if isinstance(value, (int, float)) else "–"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Make the selected version live (promote or roll back)", permissions=["retrain"])
    def make_live(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        try:
            services.model_version_activate(version=version, user=request.user)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, f"{version.project} v{version.number} is live.", messages.SUCCESS)

    @admin.action(description="Pin the selected versions (their files are never pruned)", permissions=["retrain"])
    def pin(self, request, queryset):
        for version in queryset:
            try:
                retention.model_version_pin(version=version, pinned=True, user=request.user)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description="Unpin the selected versions", permissions=["retrain"])
    def unpin(self, request, queryset):
        for version in queryset:
            retention.model_version_pin(version=version, pinned=False, user=request.user)
