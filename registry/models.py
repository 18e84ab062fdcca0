"""Every model, imported in one place so that Alembic and `flask shell` see the whole schema."""

from registry.audit.models import AuditEvent
from registry.auth.models import LoginAttempt, User
from registry.counties.models import Unit
from registry.pairings.models import Pairing, Programme

__all__ = ["AuditEvent", "LoginAttempt", "Pairing", "Programme", "Unit", "User"]
