"""Gunicorn settings every launcher shares: `make run`, docker-compose, the Dockerfile, the benchmarks.

    gunicorn config.wsgi --config python:config.gunicorn --workers 4 --threads 4 ...

Sizes (workers, threads, bind) stay on each command line; what is here is
how a worker should behave wherever it runs.

Not here, on purpose: gc.freeze() after start-up. A full collection in a
worker walks its ~110k start-up objects (~80 ms on a 2-vCPU VM, stalling the
worker's requests); freezing removed every labeling request over 50 ms, but
raised the p99 in 7 of 8 paired benchmark rounds (docs/labeling.md).
"""

from __future__ import annotations

from pathlib import Path

worker_class = "gthread"

# Workers touch a heartbeat file between requests; on a disk whose flushes
# stall, a file in /tmp can stall them too (gunicorn's docs advise a tmpfs).
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"
