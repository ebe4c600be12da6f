"""Gunicorn settings for chatstream.

``gunicorn -c python:chatstream.gunicorn_conf 'chatstream.app:create_app()'``

Every worker process calls ``create_app()`` itself and so loads its own copy of the model: run one
worker per GPU (the Helm chart runs one worker per pod). The app is never preloaded in the master
because a CUDA context does not survive ``fork``. Model loading happens while the worker boots and
counts against gunicorn's worker ``timeout``, hence the generous default.
"""

from __future__ import annotations

import os

bind = f"{os.environ.get('CHATSTREAM_HOST', '127.0.0.1')}:{os.environ.get('CHATSTREAM_PORT', '8000')}"
worker_class = "uvicorn_worker.UvicornWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
preload_app = False
#: seconds a worker may stay silent (booting = loading the model) before the master kills it
timeout = int(os.environ.get("CHATSTREAM_GUNICORN_TIMEOUT", "600"))
#: on SIGTERM, running streams get the service's drain time, plus a little for the lifespan shutdown
graceful_timeout = int(float(os.environ.get("CHATSTREAM_DRAIN_TIMEOUT_SEC", "30"))) + 5
keepalive = 5
#: gunicorn >= 24's control socket lives under $HOME, often read-only in containers; nothing here uses it
control_socket_disable = True
