"""Gunicorn settings every launcher shares: `make run`, docker-compose, the Dockerfile, the benchmarks.

    gunicorn config.wsgi --config python:config.gunicorn --workers 4 --threads 4 ...

Sizes (workers, threads, bind) stay on each command line; what is here is
how a worker should behave wherever it runs.
"""
from __future__ import annotations

import gc
from pathlib import Path

worker_class = "gthread"

# Workers touch a heartbeat file between requests; on a disk whose flushes
# stall, a file in /tmp can stall them too (gunicorn's docs advise a tmpfs).
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"


def post_worker_init(worker) -> None:
    """Move the loaded app's objects out of the garbage collector's sight.

    A worker holds ~110k long-lived objects once Django, the URLconf and the
    API are loaded (the URLconf is loaded here, not on the first request, so
    that it is frozen too). Every full (generation 2) collection walks all of them:
    ~80 ms on a 2-vCPU VM, during which the worker's every thread holds still,
    so each in-flight request gains those 80 ms (seen in the labeling
    benchmark as clusters of ~100 ms next and vote requests). They never become
    garbage, so freezing them (gc.freeze, as Instagram does for its Django
    workers) loses nothing, and a full collection then walks only what
    requests create: well under a millisecond.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # imports the URLconf, the views and the API
    gc.freeze()
