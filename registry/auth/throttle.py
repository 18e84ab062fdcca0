"""Login throttling: growing delays per (username, address) and, far more generously, per address.

Keying on the pair means an attacker guessing one account's password delays only their own address for that
account: the real user at another address logs in as usual, and a NAT office is not punished for one person's
typos. The address-wide counter catches one address trying many usernames; its limit is high because a whole
office may share that address.

The client address is ``request.remote_addr``: the socket's peer, or under PRODUCTION the address ProxyFix takes
from the last PROXY_COUNT X-Forwarded-For entries (those our own proxies appended), so a value the client puts
in front of the header changes nothing.

The state lives in the database (every worker process sees it). Concurrent attempts of one pair may all pass
``check`` before any failure is counted, so a burst can exceed the limit by up to the number of workers; the
counts themselves are exact (rows are locked while counted).
"""

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from registry.auth.models import ANY_USERNAME, LoginThrottle
from registry.kernel.audit.services import record
from registry.kernel.database import utcnow
from registry.kernel.extensions import db


class LoginThrottled(Exception):
    """Too many recent failures for this username from this address, or from this address altogether."""

    def __init__(self, until: datetime):
        super().__init__(until)
        self.until = until

    @property
    def minutes(self) -> int:
        """Whole minutes left to wait, at least one."""
        return max(1, math.ceil((self.until - utcnow()).total_seconds() / 60))


def check(username: str, ip: str) -> None:
    """Refuse an attempt while the pair or the address is delayed.

    :raise LoginThrottled: with the time the later delay ends.
    """
    until = db.session.scalar(
        sa.select(sa.func.max(LoginThrottle.locked_until)).where(
            LoginThrottle.ip == ip[:64],
            LoginThrottle.username.in_((username[:50], ANY_USERNAME)),
            LoginThrottle.locked_until > utcnow(),
        )
    )
    if until is not None:
        raise LoginThrottled(until)


def count_failure(username: str, ip: str, user=None) -> None:
    """Count a failed attempt for the pair and the address; delay them once they reach their limits.

    The first delay of a pair or address is audited (not every attempt); a pair only when ``user`` exists, so
    typed unknown usernames fill no audit rows: an address trying many of them is audited by its own counter.
    """
    cfg = current_app.config
    now = utcnow()
    _purge(now)
    # An empty username would be the address's own row (the login form never sends one).
    pair = username and _counted(_locked_row(username[:50], ip[:64], now), cfg["LOGIN_FAILURE_LIMIT"], now)
    if pair and user is not None:
        record(
            "login_throttled",
            user,
            actor=None,
            summary=f"登录失败 {cfg['LOGIN_FAILURE_LIMIT']} 次，暂停 {pair} 分钟（用户名 {username}，地址 {ip}）",
        )
    address = _counted(_locked_row(ANY_USERNAME, ip[:64], now), cfg["LOGIN_IP_FAILURE_LIMIT"], now)
    if address:
        record(
            "login_throttled",
            None,
            actor=None,
            entity_type="users",
            summary=f"地址 {ip} 登录失败 {cfg['LOGIN_IP_FAILURE_LIMIT']} 次（各用户名合计），暂停 {address} 分钟",
        )


def clear_pair(username: str, ip: str) -> None:
    """A successful login forgets the pair's failures (the address's count stands)."""
    db.session.execute(
        sa.delete(LoginThrottle).where(LoginThrottle.username == username[:50], LoginThrottle.ip == ip[:64])
    )


def clear_username(username: str) -> int:
    """Forget a username's failures from every address; return how many addresses were counting."""
    live = len(throttles_of(username))
    db.session.execute(sa.delete(LoginThrottle).where(LoginThrottle.username == username))
    return live


def throttles_of(username: str) -> list[LoginThrottle]:
    """A username's live counters, most recent first, for the administrators' user page."""
    return db.session.scalars(
        sa.select(LoginThrottle)
        .where(LoginThrottle.username == username, LoginThrottle.expires_at > utcnow())
        .order_by(LoginThrottle.last_failure_at.desc())
    ).all()


def _counted(row: LoginThrottle, limit: int, now: datetime) -> int | None:
    """Add one failure to ``row``; return the delay in minutes if this is its first delay (to be audited)."""
    cfg = current_app.config
    if row.expires_at <= now:  # a quiet window has passed: the count starts over
        row.failures, row.delays, row.locked_until = 0, 0, None
    row.failures += 1
    row.last_failure_at = now
    first_delay = None
    if row.failures >= limit:
        minutes = min(cfg["LOGIN_DELAY_MINUTES"] * 2**row.delays, cfg["LOGIN_MAX_DELAY_MINUTES"])
        row.locked_until = now + timedelta(minutes=minutes)
        row.delays += 1
        if row.delays == 1:
            first_delay = minutes
    window = timedelta(minutes=cfg["LOGIN_FAILURE_WINDOW_MINUTES"])
    row.expires_at = max(now, row.locked_until or now) + window
    return first_delay


def _locked_row(username: str, ip: str, now: datetime) -> LoginThrottle:
    """The pair's row, created if missing and locked (FOR UPDATE on PostgreSQL) so concurrent failures add up.

    INSERT … ON CONFLICT DO NOTHING instead of a plain INSERT: two workers counting the first failure of the
    same pair at once must not fail on the unique constraint.
    """
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(LoginThrottle)
        .values(username=username, ip=ip, failures=0, delays=0, expires_at=now)
        .on_conflict_do_nothing(index_elements=["username", "ip"])
    )
    return db.session.scalars(
        sa.select(LoginThrottle)
        .where(LoginThrottle.username == username, LoginThrottle.ip == ip)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _purge(now: datetime) -> None:
    """Delete lapsed counters, so guessed usernames do not pile up in the table."""
    db.session.execute(sa.delete(LoginThrottle).where(LoginThrottle.expires_at <= now))
