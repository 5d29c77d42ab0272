from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("tokens/", views.tokens_page, name="tokens"),
    path("tokens/issue", views.token_issue, name="token-issue"),
    path("tokens/issue-for-user", views.token_issue_for_user, name="token-issue-for-user"),
    path("tokens/<int:token_id>/revoke", views.token_revoke, name="token-revoke"),
]
