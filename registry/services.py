"""Exceptions and helpers shared by every domain's services."""

import sqlalchemy as sa

from registry.extensions import db


class ServiceError(ValueError):
    """A business rule was violated; the message (Chinese) is shown to the user as is.

    :param field: the form field the message belongs to, when there is one.
    """

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class StaleEdit(Exception):
    """The record changed since the form was loaded (shown as 409)."""


def check_version(obj, version):
    """Refuse an edit made on an older version of ``obj``, or posted without a usable one.

    ``version`` is what the edit form carried: an int, or ``registry.forms.NO_VERSION`` when the post had none
    (missing, empty, garbled), which is refused like a stale one. Only ``None`` skips the check: it is what
    callers outside a form pass (imports, commands, tests), which hold the record they change.
    """
    if version is None:
        return
    if type(version) is not int or obj.version_id != version:
        raise StaleEdit()


def insert_unique(obj, message: str, field: str | None = None) -> None:
    """Add and flush ``obj`` inside a SAVEPOINT: if a unique key refuses it (another request registered the same
    record since the service checked), raise ServiceError(message) and leave the request's transaction usable."""
    try:
        with db.session.begin_nested():
            db.session.add(obj)
            db.session.flush()
    except sa.exc.IntegrityError as exc:
        raise ServiceError(message, field) from exc
