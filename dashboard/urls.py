from django.urls import path

from dashboard import views

urlpatterns = [
    path("p/<slug:slug>/dashboard/", views.dashboard_page, name="dashboard"),
    path("p/<slug:slug>/dashboard/annotators/", views.dashboard_annotators, name="dashboard-annotators"),
    path("p/<slug:slug>/dashboard/<slug:chart>.csv", views.dashboard_csv, name="dashboard-csv"),
]
