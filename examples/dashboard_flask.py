"""A Flask app with the pyq dashboard mounted at /pyq (as Sidekiq::Web mounts in Rails).

Run it with ``PYQ_WEB_PASSWORD=... flask --app examples.dashboard_flask run`` and open
http://127.0.0.1:5000/pyq/. The dashboard reads the usual pyq settings (``PYQ_REDIS_URL``...).
"""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import pyq.config
import pyq.web

app = Flask(__name__)


@app.route("/")
def home() -> str:
    return "the host app"


dashboard = pyq.web.wsgi_app(pyq.config.load(), password=os.environ["PYQ_WEB_PASSWORD"])
app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/pyq": dashboard})  # type: ignore[method-assign]
