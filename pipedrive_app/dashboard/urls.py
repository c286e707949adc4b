from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("companies/", views.company_list, name="companies"),
    path("companies/<int:company_id>/", views.company_detail, name="company"),
    path("companies/<int:company_id>/actions/<slug:action>/", views.company_action, name="company_action"),
    path("events/", views.event_list, name="events"),
    path("events/<int:event_id>/", views.event_detail, name="event"),
    path("events/<int:event_id>/replay/", views.event_replay, name="event_replay"),
    path("audit/", views.audit_list, name="audit"),
    path("actions/<int:action_id>/", views.action_status, name="action"),
]
