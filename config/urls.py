from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from config.api import api
from config.health import healthz


def _api_urls():
    # The API authenticates each request itself (token or session) and
    # answers 401 in JSON, so the login-redirect middleware must let it through.
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = login_not_required(pattern.callback)
    return patterns, app_name, namespace


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico where a page names no icon (the API's JSON, say).
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True))),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", _api_urls()),
    path("", include("accounts.urls")),
    path("", include("labeling.urls")),
    path("", include("dashboard.urls")),
    path("", include("rewardmodel.urls")),
]
