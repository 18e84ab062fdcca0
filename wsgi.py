"""WSGI entry point: `gunicorn wsgi:app`; `flask` finds it without --app."""

from registry import create_app

app = create_app()
