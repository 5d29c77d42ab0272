"""What retraining tells the apps above it (the dashboard), without importing them."""

from django.dispatch import Signal

# Sent inside the transaction that makes a model version live (a promotion
# or a rollback), with `version`. The dashboard recomputes its
# model-vs-human figures for it in the same transaction.
version_activated = Signal()
