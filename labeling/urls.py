from django.urls import path

from labeling import views, views_data

urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/label/", views.label, name="label"),
    path("p/<slug:slug>/label/<int:assignment_id>/vote", views.vote, name="label-vote"),
    path("p/<slug:slug>/label/<int:assignment_id>/skip", views.skip, name="label-skip"),
    path("p/<slug:slug>/import/", views_data.project_import, name="project-import"),
    path("p/<slug:slug>/export/", views_data.project_export, name="project-export"),
    path("p/<slug:slug>/export/download", views_data.project_export_download, name="project-export-download"),
    path("imports/<int:job_id>/", views_data.import_job, name="import-job"),
    path("imports/<int:job_id>/progress", views_data.import_job_progress, name="import-job-progress"),
    path("imports/<int:job_id>/retry", views_data.import_job_retry, name="import-job-retry"),
]
