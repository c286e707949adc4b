from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from pipedrive_app.urls import urlpatterns as app_urlpatterns


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    """The floor: the same server, middleware and body read, but no work."""
    request.read()
    return HttpResponse(b'{"ok": true}', content_type="application/json")


urlpatterns = [path("bench/bare/", bare), *app_urlpatterns]
