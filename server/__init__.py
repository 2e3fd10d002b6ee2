"""Trailmark: a self-hosted, Intercom-compatible event tracker."""

__version__ = "0.1.0"
