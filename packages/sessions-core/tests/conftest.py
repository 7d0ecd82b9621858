"""Core's tests never autoload installed driver plugins."""

from __future__ import annotations

import os

os.environ["SESSIONS_PLUGINS"] = ""
