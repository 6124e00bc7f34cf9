#!/bin/sh
# The server's start-up command: the container's CMD (deploy/Dockerfile), and what CI runs
# outside the image (tests/e2e/test_start_script_e2e.py), so that the image never starts
# anything the tests did not.
#
# Applies Django's migrations (the admin's users and sessions; a no-op when they are applied),
# then replaces itself with daphne on $HOST:$PORT, so that the orchestrator's SIGTERM reaches
# the server itself and starts its drain.
set -eu
cd "$(dirname "$0")/.."
python manage.py migrate --noinput
exec daphne -b "${HOST:-0.0.0.0}" -p "${PORT:-8765}" --proxy-headers project.asgi:application
