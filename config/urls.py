from django.contrib import admin
from django.contrib.auth import views as auth_views
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
    # Login and logout only: the password reset and change routes of
    # django.contrib.auth.urls need mail (there is none) and have no throttle.
    # Admins set passwords in /admin/; logins are throttled by django-axes.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", _api_urls()),
    path("", include("accounts.urls")),
    path("", include("labeling.urls")),
    path("", include("dashboard.urls")),
    path("", include("rewardmodel.urls")),
]
