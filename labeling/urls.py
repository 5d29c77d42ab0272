from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("p/<slug:slug>/label/", views.label, name="label"),
    path("p/<slug:slug>/label/<int:assignment_id>/vote", views.vote, name="label-vote"),
    path("p/<slug:slug>/label/<int:assignment_id>/skip", views.skip, name="label-skip"),
]
