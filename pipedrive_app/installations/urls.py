from django.urls import path

from . import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("oauth/install", views.oauth_install, name="oauth-install"),
    path("oauth/callback", views.oauth_callback, name="oauth-callback"),
    path("oauth/installed/", views.oauth_installed, name="oauth-installed"),
]
