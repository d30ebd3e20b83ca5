# The klein-bench server image: one image for the web, worker and beat services of
# docker-compose.yml, which choose what to run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# .dockerignore keeps tests, local state and model weights out.
COPY . .
# The agent's core package carries the wire format the server verifies; its [diffusers]
# extra (and torch) is for contributors' machines and stays out of the image. The server
# is installed editable, so the code that runs is the one copy in /app, templates included.
RUN pip install ./agent -e .

# Static files are collected with production settings, so WhiteNoise finds the manifest it
# serves from; the agent's wheel, which the site serves at /agent/ for its install command,
# is built from the same checkout. The values only satisfy the settings checks: neither
# command connects to the database or Redis, and nothing is signed.
RUN DJANGO_DEBUG=0 \
    SECRET_KEY=collectstatic-at-build-time-only-this-key-signs-nothing-0123456789 \
    ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=postgres://build@build.invalid/build \
    REDIS_URL=redis://build.invalid:6379/0 \
    sh -c "python manage.py collectstatic --no-input && python manage.py buildagent"

RUN useradd --system --no-create-home --home-dir /app app \
    && mkdir -p /app/data /var/lib/klein-bench \
    && chown app:app /app/data /var/lib/klein-bench
USER app

EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--no-control-socket"]
