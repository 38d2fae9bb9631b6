"""Helpers shared by test modules: where the shared evaluation data is, and external test dependencies."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FRAMEWORK_RES = "/usr/share/android-framework-res/framework-res.apk"  # where Debian's android-framework-res puts it


def required(what: str, hint: str):
    """A missing test dependency fails the run when CI=true and skips the test locally."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required when CI=true: {hint}", pytrace=False)
    pytest.skip(f"{what} is missing: {hint}")


def platform_tool(name: str, package: str) -> str:
    """An Android platform tool on PATH (or a file by its path) from a Debian package; see :func:`required`."""
    path = (name if os.path.isfile(name) else None) if os.path.isabs(name) else shutil.which(name)
    if path is None:
        required(name, f"install the Debian package {package} (scripts/install-test-deps.sh does)")
    return path
