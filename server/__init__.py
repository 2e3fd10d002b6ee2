"""Trailmark: a self-hosted, Intercom-compatible event tracker."""

# The one place the version is written (pyproject.toml reads it; `trailmark --version`, the admin footer).
__version__ = "0.2.0.dev0"
