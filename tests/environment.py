"""Loaded first (`-p tests.environment` in pyproject.toml), before pytest-django reads the settings.

The suite runs as production does, with DEBUG off; settings refuse DEBUG=0 without a SECRET_KEY, so the
suite brings a key of its own unless one is set.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-never-used-in-production-0123456789")
