"""The JSON API under /api/v1/, with its OpenAPI schema at /api/v1/openapi.json."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI

from dashboard.api import router as metrics_router
from labeling.api import router as labeling_router
from labeling.api_auth import API_AUTH
from lib.errors import ServiceError
from rewardmodel.api import router as retraining_router

api = NinjaAPI(title="Preference labeling and reward models", version="1", urls_namespace="api", auth=API_AUTH)
api.add_router("/", labeling_router)
api.add_router("/", metrics_router)
api.add_router("/", retraining_router)


@api.exception_handler(ServiceError)
def service_error(request: HttpRequest, exc: ServiceError):
    return api.create_response(request, {"detail": exc.message}, status=exc.status)
