# gridsvc application image (the database runs in its own PostGIS container: docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install . gunicorn && make assets
RUN useradd --system --home /app gridsvc && chown -R gridsvc /app
USER gridsvc
EXPOSE 8000
CMD ["gunicorn", "--workers", "2", "--bind", "0.0.0.0:8000", "gridsvc.web:create_app()"]
