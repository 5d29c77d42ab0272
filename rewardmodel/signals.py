"""What retraining tells the apps above it (the dashboard), without importing them."""

from django.dispatch import Signal

# Sent inside the transaction that makes a model version live (a promotion
# or a rollback), with `version`. The dashboard recomputes its
# model-vs-human figures for it in the same transaction.
version_activated = Signal()

# Sent inside the transaction that adds scores (PairPrediction rows) to an
# existing version, when the promotion gate scores it on newer held-out
# pairs, with `version`. The dashboard recounts its model-vs-human figures
# if that version is the live one, so they never miss a scored pair.
version_predictions_added = Signal()
