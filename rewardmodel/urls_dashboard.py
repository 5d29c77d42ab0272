from django.urls import path

from rewardmodel import views_dashboard

urlpatterns = [
    path("p/<slug:slug>/dashboard/", views_dashboard.dashboard_page, name="dashboard"),
    path("p/<slug:slug>/dashboard/annotators/", views_dashboard.dashboard_annotators, name="dashboard-annotators"),
    path("p/<slug:slug>/dashboard/<slug:chart>.csv", views_dashboard.dashboard_csv, name="dashboard-csv"),
]
