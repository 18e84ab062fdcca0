"""Reminders: periodic checks find what is due or overdue and write notifications to the users responsible.

Each check is a function ``(today) -> iterable of Due`` registered with ``@reminder``; ``notify(today)`` runs them
all and writes each (user, key) once, so a daily run never repeats a reminder and a reminder read stays read.

Checks here:
- the quarter's narrative (亮点/问题/下步打算) of a county or prefecture not written ``NARRATIVE_DUE_DAYS`` after
  the quarter ended: reminded to that unit's office staff.

Hook for later modules (the quarter close with report states and ``REPORT_DUE_DAYS``, disclosure windows,
rectification deadlines, asset checks): write a check in the module's own package and register it from the app
layer, e.g. in ``registry/tasks/__init__.py``::

    reminders.reminder(lambda today: (Due(user_id, f"report:{unit_id}:{quarter}", "…未提交", link) for … ))

Notifications are optionally e-mailed through SMTP (``MAIL_SERVER``; off by default) to the address a user gave
on the notifications page.
"""

import logging
import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from flask import current_app, url_for

from registry.auth.models import User
from registry.counties.models import Side, Unit, UnitKind
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.kernel.roles import Role
from registry.reports.models import QuarterNarrative
from registry.reports.queries import paired_counties
from registry.tasks.models import Notification, NotificationSetting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Due:
    user_id: int
    #: Once per user: the same key is never notified twice.
    key: str
    title: str
    link: str = ""


REMINDERS: list[Callable[[date], Iterable[Due]]] = []


def reminder(check):
    REMINDERS.append(check)
    return check


def last_ended_quarter(today: date) -> Quarter:
    return Quarter.containing(today).previous()


@reminder
def narratives_due(today: date) -> Iterable[Due]:
    """County and prefecture offices whose unit's narrative of the last quarter is still empty after its due day.

    The quarter's report has no state yet (submitted or not); until the quarter close adds one, the narrative
    written by the unit's staff is what this can tell honestly.
    """
    quarter = last_ended_quarter(today)
    due = quarter.end + timedelta(days=int(current_app.config["NARRATIVE_DUE_DAYS"]))
    if today <= due:
        return
    sichuan = db.session.scalar(sa.select(Unit).where(Unit.side == Side.WEST, Unit.kind == UnitKind.PROVINCE))
    if sichuan is None:
        return
    paired = {c.id for c in paired_counties(sichuan, quarter)}
    written = set(
        db.session.scalars(
            sa.select(QuarterNarrative.unit_id).where(
                QuarterNarrative.year == quarter.year,
                QuarterNarrative.quarter == quarter.number,
                sa.or_(
                    QuarterNarrative.highlights != "",
                    QuarterNarrative.problems != "",
                    QuarterNarrative.next_steps != "",
                ),
            )  # fmt: skip
        )
    )
    staff = db.session.scalars(
        sa.select(User).where(
            User.is_active.is_(True), User.role.in_((Role.COUNTY, Role.PREFECTURE)), User.scope_unit_id.is_not(None)
        )
    ).all()
    for user in staff:
        unit = user.scope_unit
        if unit.id in written or (user.role is Role.COUNTY and unit.id not in paired):
            continue
        with current_app.test_request_context():
            link = url_for("reports.dashboard", unit_id=unit.id, quarter_text=str(quarter)) + "#narrative"
        yield Due(
            user.id,
            f"narrative:{unit.id}:{quarter}",
            f"{unit.name}{quarter.label}季度报告的工作情况说明（亮点、问题、下步打算）尚未填写，已超过 {due} 的期限。",
            link,
        )


def notify(today: date | None = None) -> int:
    """Run every check; write the new notifications (commits); e-mail them when SMTP is configured."""
    today = today or date.today()
    existing = set(db.session.execute(sa.select(Notification.user_id, Notification.key)).tuples())
    new = []
    for check in REMINDERS:
        for due in check(today):
            if (due.user_id, due.key) in existing:
                continue
            existing.add((due.user_id, due.key))
            new.append(Notification(user_id=due.user_id, key=due.key, title=due.title, link=due.link))
    db.session.add_all(new)
    db.session.commit()
    if new and current_app.config.get("MAIL_SERVER"):
        send_emails()
    return len(new)


def unread_count(user) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Notification.id)).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    )


def send_emails() -> int:
    """E-mail the notifications not yet e-mailed to users who gave an address; each is marked when sent."""
    config = current_app.config
    pending = db.session.execute(
        sa.select(Notification, NotificationSetting.email)
        .join(NotificationSetting, NotificationSetting.user_id == Notification.user_id)
        .where(Notification.emailed_at.is_(None), NotificationSetting.email != "")
        .order_by(Notification.id)
    ).all()
    if not pending:
        return 0
    sent = 0
    with smtplib.SMTP(config["MAIL_SERVER"], int(config["MAIL_PORT"]), timeout=30) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        for notification, address in pending:
            message = EmailMessage()
            message["From"] = config["MAIL_FROM"]
            message["To"] = address
            message["Subject"] = f"【东西部协作台账】{notification.title[:60]}"
            body = notification.title
            if notification.link and config.get("PUBLIC_URL"):
                body += "\n\n" + config["PUBLIC_URL"].rstrip("/") + notification.link
            message.set_content(body + f"\n\n—— {config['ORG_NAME']}")
            smtp.send_message(message)
            notification.emailed_at = utcnow()
            sent += 1
    db.session.commit()
    return sent
