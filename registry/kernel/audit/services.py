"""Write audit events and compute field diffs. Callers commit; nothing here flushes the change itself."""

from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from flask import has_request_context, request

from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.kernel.versions import touch_for_audit


def json_value(value):
    """Turn a column value into something JSON can hold without losing meaning."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def apply_changes(obj, data: dict, fields) -> dict:
    """Set ``fields`` of ``obj`` from ``data`` (missing keys are left alone); return {field: [old, new]} of changes."""
    changes = {}
    for name in fields:
        if name not in data:
            continue
        old, new = getattr(obj, name), data[name]
        if old != new:
            setattr(obj, name, new)
            changes[name] = [json_value(old), json_value(new)]
    return changes


def snapshot(obj, fields) -> dict:
    """The current values of ``fields``, for create and delete events."""
    return {name: json_value(getattr(obj, name)) for name in fields}


def event_values(
    action: str,
    entity,
    *,
    actor,
    summary: str = "",
    changes: dict | None = None,
    entity_type=None,
    entity_id=None,
    context=None,
    batch=None,
) -> dict:
    """The columns of one audit event (``record`` adds it to the session; an import inserts many at once).

    ``entity_id`` stands in for ``entity.id`` when the record was inserted without a model instance. Every event
    also marks what its write makes out of date for the figure caches (``registry.kernel.versions``).
    """
    touch_for_audit(entity, entity_type, context)
    return {
        "actor_id": getattr(actor, "id", None),
        "actor_name": (actor.display_name or actor.username) if actor is not None else "系统",
        "action": action,
        "entity_type": entity_type or entity.__tablename__,
        "entity_id": getattr(entity, "id", None) if entity_id is None else entity_id,
        "summary": summary[:500],
        "changes": changes or {},
        "context_type": context.__tablename__ if context is not None else None,
        "context_id": context.id if context is not None else None,
        "ip": (request.remote_addr or "") if has_request_context() else "",
        "batch_id": batch.id if batch is not None else None,
    }


def record(
    action: str,
    entity,
    *,
    actor,
    summary: str = "",
    changes: dict | None = None,
    entity_type=None,
    context=None,
    batch=None,
):
    """Add one audit event to the session (same transaction as the change).

    :param entity: a model instance (its table name and id are recorded), or None with ``entity_type``.
    :param actor: the acting User, or None for the system.
    :param context: the record ``entity`` belongs to, whose history should show the event as well.
    :param batch: the import event this change was made by (its record's history says 经导入修改).
    """
    event = AuditEvent(
        **event_values(action, entity, actor=actor, summary=summary, changes=changes, entity_type=entity_type,
                       context=context, batch=batch)
    )  # fmt: skip
    db.session.add(event)
    return event
