# syntax=docker/dockerfile:1.7
# gridsvc application image (the database runs in its own PostGIS container: docker-compose.yml).
# Stages: `assets` installs the map assets from the npm lock, `build` builds gridsvc's wheel (the
# assets inside) and the wheelhouse of its locked dependencies, `runtime` installs that wheelhouse
# into a virtual environment and runs gunicorn from the installed package as a non-root user.
# tests/test_packaging.py lints this file with hadolint and runs the runtime stage's RUN and CMD
# in a fresh venv outside the checkout.

FROM node:20-bookworm-slim AS assets
WORKDIR /src/maps/assets
COPY maps/assets/package.json maps/assets/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY setup.py setup.cfg pyproject.toml MANIFEST.in README.md requirements.lock ./
COPY scripts/wheelhouse.py scripts/
COPY gridsvc gridsvc
COPY geodata geodata
COPY maps maps
COPY --from=assets /src/maps/assets/node_modules maps/assets/node_modules
RUN python scripts/wheelhouse.py /wheelhouse

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/gridsvc/bin:$PATH
RUN groupadd --system --gid 10001 gridsvc \
    && useradd --system --uid 10001 --gid gridsvc --create-home --home-dir /home/gridsvc gridsvc
RUN --mount=type=bind,from=build,source=/wheelhouse,target=/wheelhouse \
    python -m venv /opt/gridsvc \
    && /opt/gridsvc/bin/pip install --no-cache-dir --disable-pip-version-check --no-index --find-links /wheelhouse --require-hashes -r /wheelhouse/requirements.txt
USER 10001:10001
WORKDIR /home/gridsvc
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/login', timeout=4)"]
CMD ["gunicorn", "--workers", "2", "--bind", "0.0.0.0:8000", "gridsvc.web:create_app()"]
