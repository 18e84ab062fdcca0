"""The kernel: what every other package stands on and which knows none of them.

Database and session helpers, periods and money, the audit trail, locks, versions, forms and web helpers, the
spreadsheet kit (``transfer``), stored files, search, identity numbers, configuration and errors. Nothing here
imports a package outside the kernel (``tests/test_layering.py``).
"""
