"""The JSON API under /api/v1/, with its OpenAPI schema at /api/v1/openapi.json."""
from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI

from labeling.api import router as labeling_router
from labeling.api_auth import API_AUTH
from labeling.errors import LabelingError
from rewardmodel.api import router as retraining_router
from rewardmodel.api_metrics import router as metrics_router

api = NinjaAPI(title="Preference labeling and reward models", version="1", urls_namespace="api", auth=API_AUTH)
api.add_router("/", labeling_router)
api.add_router("/", metrics_router)
api.add_router("/", retraining_router)


@api.exception_handler(LabelingError)
def labeling_error(request: HttpRequest, exc: LabelingError):
    return api.create_response(request, {"detail": exc.message}, status=exc.status)
