from django.contrib import admin, messages

from accounts import services
from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_by", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    # Every field is read-only: a token is issued with its user fixed (the tokens page or
    # `manage.py issue_token`, which show the raw value once); here it can only be revoked.
    readonly_fields = ("name", "user", "created_by", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            services.api_token_revoke(token_id=token.pk, user=request.user)
        self.message_user(request, "Revoked.", messages.SUCCESS)
