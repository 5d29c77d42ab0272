"""The project form: what an admin sets on a project, and the sections other apps add to it.

The form only parses and checks the input; `labeling.services` writes it.
An app above labeling (the retrain policy lives in rewardmodel) adds its own
section through the `project_form_sections` signal, so the page is one form
with one Save, saved in one transaction, without labeling importing it.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from django import forms

from labeling import signals
from labeling.models import Project

# Settings a post may leave out: the project keeps (or, new, defaults) them.
_KEEP_WHEN_LEFT_OUT = (
    "acquisition",
    "exploration_percent",
    "gold_percent",
    "repeat_percent",
    "gold_min_votes",
    "gold_pause_below",
)

# The fields of the form, in page order.
SETTINGS_FIELDS = (
    "name",
    "instructions",
    "overlap_target",
    "test_percent",
    "allow_tie",
    "allow_both_bad",
    "ask_strength",
    "ask_rationale",
    *_KEEP_WHEN_LEFT_OUT,
)

_LABELS = {
    "overlap_target": "Votes per pair (K)",
    "test_percent": "Held-out share (%)",
    "allow_tie": "Offer “Tie”",
    "allow_both_bad": "Offer “Both bad”",
    "ask_strength": "Ask how much better (slightly, better, much better)",
    "ask_rationale": "Offer a box for the reason",
    "gold_percent": "Check pairs with a known answer (%)",
    "repeat_percent": "Repeat checks (%)",
    "gold_min_votes": "Check pairs answered before a pause",
    "gold_pause_below": "Pause below this accuracy",
}
_HELP = {
    "overlap_target": "How many annotators vote on each pair. 3 gives a majority; more gives tighter agreement figures.",
    "test_percent": "Prompts held out to measure the model on, never trained on. Fixed once the project has pairs.",
    "instructions": "Markdown, shown above every pair.",
    "acquisition": "Which train pairs are served first, re-ordered after each head retrain (random until a strategy "
    "beats it on your data: see docs/active_learning.md). Held-out pairs always stay random.",
    "exploration_percent": "Share of the re-ordered train pairs placed at random.",
    "gold_percent": "Share of each annotator's pairs that are gold pairs (imported with a known answer), while any "
    "are left for them. They look like any pair and never count in training or agreement (docs/label_quality.md).",
    "repeat_percent": "Share of pairs that repeat one of the annotator's own, sides swapped, 20+ pairs later: "
    "their self-consistency.",
    "gold_min_votes": "An annotator can be paused once they have answered this many check pairs.",
    "gold_pause_below": "Pause an annotator when even the top of their check accuracy's 95% interval is below this "
    "(0 to 1). Paused annotators get no pairs, their votes stop training, and an admin can reinstate them.",
}


class ProjectForm(forms.Form):
    """Project settings. With `creating`, the slug too; with `split_fixed`, the held-out share is shown, not edited."""

    slug = forms.SlugField(
        max_length=64,
        label="Short name (in links)",
        help_text="Letters, digits, - and _. It is in every link to the project and cannot change later.",
    )

    def __init__(self, *args, creating: bool, split_fixed: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for name, form_field in forms.fields_for_model(Project, fields=SETTINGS_FIELDS).items():
            form_field.label = _LABELS.get(name, form_field.label)
            form_field.help_text = _HELP.get(name, form_field.help_text)
            self.fields[name] = form_field
        self.fields["instructions"].widget.attrs.update(rows=8, id="id_instructions")
        if not creating:
            del self.fields["slug"]
        if split_fixed:
            self.fields["test_percent"].disabled = True  # Django ignores a posted value for a disabled field
        for name in _KEEP_WHEN_LEFT_OUT:
            self.fields[name].required = False

    def changes(self) -> dict[str, Any]:
        """The cleaned settings, for `services.project_create` / `project_update`."""
        return {
            k: v
            for k, v in self.cleaned_data.items()
            if k != "slug" and not self.fields[k].disabled and not (k in _KEEP_WHEN_LEFT_OUT and v in (None, ""))
        }


class ProjectFormSection(Protocol):
    """What a receiver of `signals.project_form_sections` returns."""

    title: str
    template: str  # rendered with {"section": the section}
    form: forms.Form

    def save(self, *, project: Project) -> None:
        """Write the section for `project`, inside the page's transaction; raise a ServiceError to refuse."""


def project_form_sections(*, project: Project | None, data: Any) -> list[ProjectFormSection]:
    """The other apps' sections of the project form, bound to `data` (None: unbound)."""
    answers = signals.project_form_sections.send(sender=Project, project=project, data=data)
    return [section for _receiver, section in answers if section is not None]


def member_names(text: str) -> list[str]:
    """Names pasted into the members box, split on commas, semicolons, spaces and new lines."""
    return [n for n in re.split(r"[\s,;]+", text) if n]
