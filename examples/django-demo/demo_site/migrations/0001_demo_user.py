"""Creates the demo's user, ``demo`` with the password ``demo-password``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import migrations

USERNAME = "demo"
PASSWORD = "demo-password"  # a public demo account


def create_user(apps: Any, schema_editor: Any) -> None:
    user_model = apps.get_model("auth", "User")
    user_model.objects.create(username=USERNAME, password=make_password(PASSWORD))


def delete_user(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "User").objects.filter(username=USERNAME).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_user, delete_user)]
