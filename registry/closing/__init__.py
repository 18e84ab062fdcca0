"""Closing a quarter: submission, review and approval of the quarterly reports, the East side's confirmation, the
lock of approved quarters, unlock requests, and the signed report of record with its public verification page."""
