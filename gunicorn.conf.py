"""gunicorn settings of the web app (read from the working directory: the image and bench/api.py).

Threaded workers keep HTTP connections alive between requests (sync workers close each one, and
a new TCP connection per request cost about as much as the request: bench/api.py). The threads
of a worker mostly wait on PostgreSQL, so a few processes with several threads each fill 2 cores.
Command-line options (``--workers 2`` in the Dockerfile and docker-compose.yml) override these.
"""

import os

worker_class = "gthread"
workers = os.cpu_count() or 2
threads = 8
keepalive = 5  # seconds an idle client connection stays open
