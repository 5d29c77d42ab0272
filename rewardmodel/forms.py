"""The retrain policy as a section of the project form (labeling.forms).

A receiver of labeling.signals.project_form_sections: labeling builds the
page and saves the project, this section saves the policy in the same
transaction, through rewardmodel.services.
"""

from __future__ import annotations

from typing import Any

from django import forms

from labeling.models import Project
from rewardmodel import services
from rewardmodel.models import RetrainPolicy

_FIELDS = ("enabled", "min_new_votes", "max_interval_hours", "label_model", "promotion_delta")
_LABELS = {
    "enabled": "Retrain on its own",
    "min_new_votes": "after this many new votes",
    "max_interval_hours": "or after this many hours with any new vote (empty: never)",
    "label_model": "Training labels from",
    "promotion_delta": "A new version goes live if its held-out accuracy is at most this far below the live one's",
}


class RetrainPolicyForm(forms.Form):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, form_field in forms.fields_for_model(RetrainPolicy, fields=_FIELDS).items():
            form_field.label = _LABELS[name]
            form_field.help_text = ""
            self.fields[name] = form_field
        self.fields["promotion_delta"].widget.attrs.update(step="0.001")
        # A post made before this field existed (a script, an old page) keeps the policy's label model.
        self.fields["label_model"].required = False


class RetrainPolicySection:
    title = "Retraining"
    template = "rewardmodel/_policy_section.html"

    def __init__(self, *, project: Project | None, data: Any):
        policy = RetrainPolicy.for_project(project) if project is not None else RetrainPolicy()
        initial = {name: getattr(policy, name) for name in _FIELDS}
        self.form = RetrainPolicyForm(data, initial=initial, prefix="policy")

    def save(self, *, project: Project) -> None:
        changes = dict(self.form.cleaned_data)
        if not changes.get("label_model"):
            changes.pop("label_model", None)
        services.retrain_policy_update(project=project, **changes)


def on_project_form_sections(*, project: Project | None, data: Any, **signal_kwargs) -> RetrainPolicySection:
    return RetrainPolicySection(project=project, data=data)
