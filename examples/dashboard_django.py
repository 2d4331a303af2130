"""A one-file Django project with the pyq dashboard mounted at /pyq.

In a real project only the last lines belong in its ``wsgi.py``: wrap Django's
application with :func:`pyq.web.mount`. Serve ``application`` with any WSGI
server, e.g. ``gunicorn examples.dashboard_django:application``.
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

import pyq.config
import pyq.web

if not settings.configured:
    settings.configure(DEBUG=False, SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "change-me"),
                       ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"])
    django.setup()


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("the host app")


urlpatterns = [path("", home)]

# --- wsgi.py ---
from django.core.wsgi import get_wsgi_application  # noqa: E402 - after settings, as in a wsgi.py

application = pyq.web.mount(get_wsgi_application(), "/pyq",
                            pyq.web.wsgi_app(pyq.config.load(), password=os.environ["PYQ_WEB_PASSWORD"]))
