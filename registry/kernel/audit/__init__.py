"""Append-only audit trail of every change."""
