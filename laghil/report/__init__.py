"""Run reports: results.json (``RunResults.to_json``) and report.html (``render_html``)."""

from .html import render_html, render_timeline_svg
from .results import SCHEMA_VERSION, RunResults, TestResult

__all__ = ["RunResults", "TestResult", "SCHEMA_VERSION", "render_html", "render_timeline_svg"]
