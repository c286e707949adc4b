from django.contrib import admin

from .models import Company, CompanySettings, Installation, LifecycleEvent, OAuthState


class InstallationInline(admin.TabularInline):
    model = Installation
    extra = 0
    can_delete = False
    fields = ("pipedrive_user_id", "name", "is_admin", "status", "access_token_expires_at", "last_refresh_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "pipedrive_company_id", "domain", "api_domain", "installed_at")
    search_fields = ("name", "domain", "=pipedrive_company_id")
    readonly_fields = ("pipedrive_company_id", "created_at", "updated_at")
    inlines = (InstallationInline,)


@admin.register(Installation)
class InstallationAdmin(admin.ModelAdmin):
    list_display = ("name", "company", "pipedrive_user_id", "is_admin", "status", "access_token_expires_at")
    list_filter = ("status", "is_admin")
    search_fields = ("name", "email", "=pipedrive_user_id", "company__name")
    list_select_related = ("company",)
    # Tokens are never shown or editable: they are excluded from every form.
    exclude = ("access_token", "refresh_token")
    readonly_fields = (
        "company",
        "pipedrive_user_id",
        "scopes",
        "access_token_expires_at",
        "refresh_token_used_at",
        "last_refresh_at",
        "last_refresh_error",
        "refresh_failures",
        "installed_at",
        "uninstalled_at",
    )


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "source", "pipedrive_company_id", "pipedrive_user_id")
    list_filter = ("kind", "source")
    search_fields = ("=pipedrive_company_id",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OAuthState)
class OAuthStateAdmin(admin.ModelAdmin):
    list_display = ("created_at", "used_at")
    exclude = ("state_hash", "browser_hash")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CompanySettings)
class CompanySettingsAdmin(admin.ModelAdmin):
    list_display = ("company", "tracked_entities", "history_retention_days", "updated_at")
    list_select_related = ("company",)
    readonly_fields = ("company", "updated_at", "updated_by_user_id")
