"""Exceptions and helpers shared by every domain's services."""

import sqlalchemy as sa

from registry.kernel.extensions import db


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

    ``version`` is what the edit form carried: an int, or ``registry.kernel.forms.NO_VERSION`` when the post had none
    (missing, empty, garbled), which is refused like a stale one. Only ``None`` skips the check: it is what
    callers outside a form pass (imports, commands, tests), which hold the record they change.
    """
    if version is None:
        return
    if type(version) is not int or obj.version_id != version:
        raise StaleEdit()


def insert_unique(obj, message: str, field: str | None = None) -> None:
    """Add and flush ``obj`` (or a list of records, inserted together) inside a SAVEPOINT: if a unique key refuses
    it (another request registered the same record since the service checked), raise ServiceError(message) and
    leave the request's transaction usable."""
    try:
        with db.session.begin_nested():
            db.session.add_all(obj if isinstance(obj, list) else [obj])
            db.session.flush()
    except sa.exc.IntegrityError as exc:
        raise ServiceError(message, field) from exc


# ---- hooks between streams ---------------------------------------------------------------------------------------
# A stream never imports another; where one stream's rule depends on another's records (a project may not reach
# 资产已移交 before its assets are handed over), the owner of the step consults these registries and the other
# stream registers into them. Both sides import only the kernel.

#: kind ("project") -> guards ``(record, to_status: str) -> str | None``: a refusal message, or None.
STATUS_GUARDS: dict[str, list] = {}
#: kind ("project") -> reader ``(ids=None, statuses=None, codes=None) -> list[dict]``: plain facts of its records.
FACTS: dict[str, object] = {}


def status_guard(kind: str):
    """Register a guard consulted by ``check_status_guards(kind, …)`` before every status step of ``kind``."""

    def register(guard):
        if guard not in STATUS_GUARDS.setdefault(kind, []):
            STATUS_GUARDS[kind].append(guard)
        return guard

    return register


def check_status_guards(kind: str, record, to: str, field: str | None = None) -> None:
    """:raise ServiceError: the first guard's refusal of moving ``record`` to status ``to``."""
    for guard in STATUS_GUARDS.get(kind, ()):
        message = guard(record, to)
        if message:
            raise ServiceError(message, field)


def provide_facts(kind: str):
    """Register the reader of plain facts of ``kind`` (one per kind)."""

    def register(reader):
        FACTS[kind] = reader
        return reader

    return register


def facts(kind: str, *, ids=None, statuses=None, codes=None) -> list[dict]:
    """Plain facts (dicts) of records of ``kind``: those with the given ids, statuses or codes (all that apply)."""
    reader = FACTS.get(kind)
    if reader is None:
        raise LookupError(f"no facts reader registered for {kind!r}")
    return reader(ids=ids, statuses=statuses, codes=codes)
