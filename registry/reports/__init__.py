"""Quarterly figures, dashboard and PDF reports."""
