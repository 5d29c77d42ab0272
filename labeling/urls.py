from django.urls import path

from labeling import views, views_data, views_projects

urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/label/", views.label, name="label"),
    path("p/<slug:slug>/label/<int:assignment_id>/vote", views.vote, name="label-vote"),
    path("p/<slug:slug>/label/<int:assignment_id>/skip", views.skip, name="label-skip"),
    path("p/<slug:slug>/label/undo", views.undo, name="label-undo"),
    path("p/<slug:slug>/history/", views.history, name="label-history"),
    path("p/<slug:slug>/history/<int:vote_id>/change", views.history_change, name="label-history-change"),
    path("projects/new", views_projects.project_new, name="project-new"),
    path("projects/markdown-preview", views_projects.markdown_preview, name="markdown-preview"),
    path("p/<slug:slug>/settings/", views_projects.project_settings, name="project-settings"),
    path("p/<slug:slug>/members/", views_projects.project_members, name="project-members"),
    path(
        "p/<slug:slug>/members/<int:user_id>/remove",
        views_projects.project_member_remove,
        name="project-member-remove",
    ),
    path(
        "p/<slug:slug>/members/<int:user_id>/reinstate",
        views_projects.annotator_reinstate,
        name="project-member-reinstate",
    ),
    path("p/<slug:slug>/import/", views_data.project_import, name="project-import"),
    path("p/<slug:slug>/export/", views_data.project_export, name="project-export"),
    path("p/<slug:slug>/export/download", views_data.project_export_download, name="project-export-download"),
    path("imports/<int:job_id>/", views_data.import_job, name="import-job"),
    path("imports/<int:job_id>/progress", views_data.import_job_progress, name="import-job-progress"),
    path("imports/<int:job_id>/retry", views_data.import_job_retry, name="import-job-retry"),
]
