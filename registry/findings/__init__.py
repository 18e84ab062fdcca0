"""Findings from the data: checks across the streams that propose problems for the rectification ledger."""
