from django.urls import path

from rewardmodel import views

app_name = "rewardmodel"

urlpatterns = [
    path("p/<slug:slug>/runs/", views.runs_page, name="runs"),
    path("p/<slug:slug>/runs/table", views.runs_table, name="runs-table"),
    path("p/<slug:slug>/runs/start", views.run_start, name="run-start"),
    path("p/<slug:slug>/runs/resume", views.policy_resume, name="policy-resume"),
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/progress", views.run_progress, name="run-progress"),
    path("runs/<int:run_id>/cancel", views.run_cancel, name="run-cancel"),
    path("versions/<int:version_id>/activate", views.version_activate, name="version-activate"),
]
