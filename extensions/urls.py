from django.urls import path

from . import floating_window, follow_up_views, views

app_name = "extensions"

urlpatterns = [
    path("panels/deal/", views.deal_panel, name="deal-panel"),
    path("panels/person/", views.person_panel, name="person-panel"),
    path("panels/organization/", views.organization_panel, name="organization-panel"),
    path("json-panels/deal/", views.deal_json_panel, name="deal-json-panel"),
    path("json-panels/person/", views.person_json_panel, name="person-json-panel"),
    path("json-panels/organization/", views.organization_json_panel, name="organization-json-panel"),
    path("actions/notes/", views.note_create, name="note-create"),
    path("settings/", views.settings_endpoint, name="settings"),
    # The custom floating window (extensions/floating_window.py)
    path("floating-window/", floating_window.floating_window_page, name="floating-window"),
    path("floating-window/feed/", floating_window.floating_window_feed, name="floating-window-feed"),
    path("modals/follow-up/", follow_up_views.follow_up_modal, name="follow-up-modal"),
    path("actions/follow-up/", follow_up_views.follow_up_action, name="follow-up-create"),
    path("links/follow-up/", follow_up_views.follow_up_link, name="follow-up-link"),
    path("json-modals/follow-up/", follow_up_views.follow_up_json_modal, name="follow-up-json-modal"),
]
