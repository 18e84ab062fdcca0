"""Spreadsheet round trip (XLSX/CSV): templates equal to exports, all-or-nothing imports with row errors."""
