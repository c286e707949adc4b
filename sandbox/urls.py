"""Mounted at ``/sandbox/`` when ``PIPEDRIVE_SANDBOX`` is on (pipedrive_app/urls.py).

``/sandbox/oauth/...`` is the OAuth server (PIPEDRIVE_OAUTH_URL = ``{APP_BASE_URL}/sandbox``);
``/sandbox/<domain>`` is a company's api_domain, with its REST API under ``api/v1/`` and ``api/v2/``
and its pages beside it.
"""

from django.urls import path, re_path

from . import api_views, oauth_views, page_views

app_name = "sandbox"

urlpatterns = [
    path("", page_views.index, name="index"),
    path("marketplace/", page_views.marketplace, name="marketplace"),
    path("webhooks/", page_views.webhooks_page, name="webhooks"),
    path("extensions/token", page_views.extension_token, name="extension-token"),
    path("oauth/authorize", oauth_views.authorize, name="oauth-authorize"),
    path("oauth/token", oauth_views.token, name="oauth-token"),
    path("oauth/revoke", oauth_views.revoke, name="oauth-revoke"),
    # REST API under each company's api_domain
    path("<slug:domain>/api/v1/users", api_views.users),
    path("<slug:domain>/api/v1/users/me", api_views.users_me),
    path("<slug:domain>/api/v1/users/<int:user_id>", api_views.user),
    path("<slug:domain>/api/v1/notes", api_views.notes),
    path("<slug:domain>/api/v1/leads", api_views.leads),
    path("<slug:domain>/api/v1/leads/<str:lead_id>", api_views.lead),
    path("<slug:domain>/api/v1/webhooks", api_views.webhooks),
    path("<slug:domain>/api/v1/webhooks/<int:webhook_id>", api_views.webhook),
    path("<slug:domain>/api/v2/activities", api_views.activities),
    path("<slug:domain>/api/v2/deals", api_views.deals),
    path("<slug:domain>/api/v2/deals/<int:deal_id>", api_views.deal),
    path("<slug:domain>/api/v2/persons", api_views.persons),
    path("<slug:domain>/api/v2/persons/<int:person_id>", api_views.person),
    path("<slug:domain>/api/v2/organizations/<int:org_id>", api_views.organization),
    path("<slug:domain>/api/v2/pipelines", api_views.pipelines),
    path("<slug:domain>/api/v2/pipelines/<int:pipeline_id>", api_views.pipeline),
    path("<slug:domain>/api/v2/stages", api_views.stages),
    path("<slug:domain>/api/v2/stages/<int:stage_id>", api_views.stage),
    path("<slug:domain>/api/v2/dealFields", api_views.deal_fields),
    path("<slug:domain>/api/v2/personFields", api_views.person_fields),
    re_path(r"^(?P<domain>[-a-zA-Z0-9_]+)/(?P<rest>api/v[12]/.*)$", api_views.not_implemented),
    # Pages of a company
    path("<slug:domain>/", page_views.company_page, name="company"),
    path("<slug:domain>/deals/<int:deal_id>/", page_views.deal_page, name="deal"),
    path("<slug:domain>/persons/<int:person_id>/", page_views.person_page, name="person"),
    path("<slug:domain>/organizations/<int:org_id>/", page_views.organization_page, name="organization"),
    path("<slug:domain>/notes/", page_views.note_add, name="note-add"),
    path("<slug:domain>/leads/", page_views.lead_add, name="lead-add"),
    path("<slug:domain>/stages/", page_views.stage_add, name="stage-add"),
    path("<slug:domain>/apps/", page_views.installed_apps_page, name="installed-apps"),
    path("<slug:domain>/apps/settings/", page_views.app_settings_page, name="app-settings"),
    path("<slug:domain>/apps/actions/<slug:action_id>/", page_views.app_action_open, name="app-action"),
]
