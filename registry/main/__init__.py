"""Home pages per role and the public pages."""
