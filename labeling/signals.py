"""What labeling tells the apps above it, without importing them.

The dashboard keeps aggregates of the votes and rewardmodel keeps features
of the pairs; labeling must not depend on either (the import arrows run one
way), so it announces what happened here and they listen (their apps.py).
"""

from django.dispatch import Signal

# Sent inside the transaction that wrote a batch of imported votes, with
# `project_id`. The votes are stored outside the dashboard aggregates
# (`Vote.in_aggregates` False), as live votes are; a receiver may fold them
# in at once, in the same transaction.
votes_imported = Signal()

# Sent inside the transaction that created new pairs (an import batch), with
# `project_id`. Retraining embeds their texts for its heads, after commit.
pairs_imported = Signal()

# Sent while the labeling page is built, with `project` and `user`; each
# receiver returns a dict of the annotator's own figures to show (never
# anyone else's). The dashboard answers from its aggregates.
annotator_figures_wanted = Signal()

# Sent while the project settings form is built, with `project` (None while
# creating one) and `data` (the POST, or None). A receiver returns a section
# of the form it owns (labeling.forms.ProjectFormSection), or None; the page
# saves every section with the project, in one transaction. rewardmodel adds
# the retrain policy this way.
project_form_sections = Signal()
