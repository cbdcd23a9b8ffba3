"""gunicorn settings of the web app (read from the working directory: the image and bench/api.py).

Threaded workers keep HTTP connections alive between requests (sync workers close each one, and
a new TCP connection per request cost about as much as the request: bench/api.py). A worker's
threads share one GIL: 4 threads a process kept the tail shorter than 8 (p99 ~100 ms against
130-170 ms on the coverage GeoJSON, 2 processes on 2 cores, same throughput). Command-line
options (``--workers 2`` in the Dockerfile and docker-compose.yml) override these.
"""

import os

worker_class = "gthread"
workers = os.cpu_count() or 2
threads = 4
keepalive = 5  # seconds an idle client connection stays open
