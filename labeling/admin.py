from django.contrib import admin

from labeling import services
from labeling.models import Annotator, Assignment, Pair, Project, Vote, VoteChange


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "overlap_target", "allow_tie", "allow_both_bad", "ask_strength", "created_at")
    search_fields = ("slug", "name")
    filter_horizontal = ("members",)
    prepopulated_fields = {"slug": ("name",)}

    def get_readonly_fields(self, request, obj=None):
        # Each pair's split was drawn from test_percent when it was stored: changing
        # it afterwards would move held-out prompts into training for new pairs only.
        if obj is not None and obj.pairs.exists():
            return (*super().get_readonly_fields(request, obj), "test_percent")
        return super().get_readonly_fields(request, obj)


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "split",
        "archived",
        "vote_count",
        "slots_taken",
        "votes_a",
        "votes_b",
        "votes_tie",
    )
    list_filter = ("project", "split", "archived")
    search_fields = ("external_id", "content_hash")
    # Counters are maintained by labeling.services; editing them by hand breaks selection.
    readonly_fields = (
        "content_hash",
        "rank",
        "slots_taken",
        "vote_count",
        "votes_a",
        "votes_b",
        "votes_tie",
        "archived",
    )
    actions = ["archive", "unarchive"]

    def has_delete_permission(self, request, obj=None):
        # A pair with votes cannot be deleted (Vote.pair is RESTRICT): archive it instead.
        if obj is not None and obj.votes.exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description="Archive the selected pairs (out of labeling and training; votes kept)")
    def archive(self, request, queryset):
        for pair in queryset:
            services.pair_archive(pair=pair, archived=True)

    @admin.action(description="Unarchive the selected pairs")
    def unarchive(self, request, queryset):
        for pair in queryset:
            services.pair_archive(pair=pair, archived=False)


@admin.register(Annotator)
class AnnotatorAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "external_id", "created_at")
    search_fields = ("user__username", "external_id")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "pair", "annotator", "left", "state", "served_at", "expires_at")
    list_filter = ("project", "state")
    raw_id_fields = ("pair", "annotator")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "project",
        "pair",
        "annotator",
        "choice",
        "shown_left",
        "strength",
        "latency_ms",
        "created_at",
    )
    list_filter = ("project", "choice")
    raw_id_fields = ("pair", "annotator", "assignment")

    # Votes are written through labeling.services only, which keeps the counters.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(VoteChange)
class VoteChangeAdmin(admin.ModelAdmin):
    """The audit of undone and changed votes: read-only, written by labeling.services."""

    list_display = ("id", "project", "vote_id", "annotator", "action", "old_choice", "new_choice", "created_at")
    list_filter = ("project", "action")
    raw_id_fields = ("pair", "annotator", "assignment", "changed_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
