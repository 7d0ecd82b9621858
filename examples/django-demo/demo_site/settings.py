"""Settings of the Django demo: Django's sessions, auth, messages and CSRF,
with sessions stored through a sessions driver (``SESSION_ENGINE = "sessions.django"``).

The driver comes from the environment as ``SessionConfig.from_env`` reads it
(``SESSION_DRIVER=redis SESSION_REDIS_URL=redis://127.0.0.1:6379/0``); with none
set, the embedded memory driver keeps sessions inside the server process.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A built-in key so the demo starts with no setup; set DJANGO_SECRET_KEY anywhere else.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-demo-insecure-key-0123456789-abcdefghij")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",  # only for `manage.py clearsessions`
    "django.contrib.messages",
    "sessions.django",  # system checks of the session settings
    "demo_site",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# The whole integration: one engine, and the driver it stores through.
SESSION_ENGINE = "sessions.django"
SESSIONS = {} if "SESSION_DRIVER" in os.environ else {"driver": "memory"}
SESSION_COOKIE_AGE = int(os.environ.get("DJANGO_SESSION_COOKIE_AGE", 2 * 3600))

# Everything below keeps its state in the session.
CSRF_USE_SESSIONS = True
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "demo_site.urls"
ASGI_APPLICATION = "demo_site.asgi.application"
WSGI_APPLICATION = "demo_site.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
# Users live in a SQLite file (`manage.py migrate` creates it and the demo user).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DEMO_DB", str(BASE_DIR / "demo.sqlite3")),
    }
}
if os.environ.get("DJANGO_DEMO_FAST_HASHER") == "1":
    # Tests sign in many times; PBKDF2's deliberate slowness would dominate them.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
