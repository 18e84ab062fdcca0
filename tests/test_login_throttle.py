"""Login throttling per (username, address) with growing delays, the address-wide limit, forwarded addresses,
the administrators' unlock and the aggregated audit entries."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from registry import create_app
from registry.auth import services
from registry.auth.models import ANY_USERNAME, LoginThrottle
from registry.kernel.audit.models import AuditEvent
from registry.kernel.database import utcnow
from registry.kernel.extensions import db
from tests.conftest import login, make_test_config

ATTACKER, VICTIM = "203.0.113.9", "198.51.100.7"
WRONG = "wrong-password-123"


def at(app, address):
    """A test client whose requests come from ``address`` (the socket's peer)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def fail(client, times, username="county"):
    for _ in range(times):
        assert login(client, username, WRONG).status_code == 200


def lapse_delays(app):
    """Let every running delay end, as if its minutes had passed (the count itself stays)."""
    with app.app_context():
        db.session.execute(sa.update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def row(app, username, ip) -> LoginThrottle:
    with app.app_context():
        found = db.session.scalar(
            sa.select(LoginThrottle).where(LoginThrottle.username == username, LoginThrottle.ip == ip)
        )
        if found is not None:
            db.session.expunge(found)
        return found


def throttle_events(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(
            sa.select(AuditEvent.summary).where(AuditEvent.action == "login_throttled").order_by(AuditEvent.id)
        ).all()


def test_limit_delays_the_pair_without_checking_the_password(app, world, monkeypatch):
    limit = app.config["LOGIN_FAILURE_LIMIT"]
    attacker = at(app, ATTACKER)
    fail(attacker, limit)
    checked = []
    monkeypatch.setattr(services, "verify_password", lambda *args: checked.append(args) or True)
    response = login(attacker, "county")  # the right password, refused all the same
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    text = response.get_data(as_text=True)
    assert "登录失败次数过多，请 1 分钟后" in text and "再试" in text
    assert checked == []
    # Another browser or worker process at the same address is delayed too: the state is in the database.
    assert login(at(app, ATTACKER), "county").status_code == 429
    assert row(app, "county", ATTACKER).failures == limit  # refused attempts are not counted


def test_the_real_user_at_another_address_is_never_blocked(app, world):
    attacker = at(app, ATTACKER)
    fail(attacker, app.config["LOGIN_FAILURE_LIMIT"])
    assert login(attacker, "county", WRONG).status_code == 429
    assert login(at(app, VICTIM), "county").status_code in (302, 303)
    assert login(at(app, ATTACKER), "county").status_code == 429


def test_delays_grow_with_each_further_failure_up_to_the_cap(app, world):
    limit = app.config["LOGIN_FAILURE_LIMIT"]
    attacker = at(app, ATTACKER)
    fail(attacker, limit - 1)
    assert row(app, "county", ATTACKER).locked_until is None
    delays = []
    for _ in range(6):
        fail(attacker, 1)
        state = row(app, "county", ATTACKER)
        delays.append((state.locked_until - state.last_failure_at) / timedelta(minutes=1))
        assert login(attacker, "county").status_code == 429
        lapse_delays(app)
    assert delays == [1, 2, 4, 8, 15, 15]
    assert row(app, "county", ATTACKER).failures == limit + 5


def test_success_clears_the_pair_and_a_quiet_window_starts_the_count_over(app, world):
    limit = app.config["LOGIN_FAILURE_LIMIT"]
    client = at(app, VICTIM)
    fail(client, limit - 1)
    assert login(client, "county").status_code in (302, 303)
    assert row(app, "county", VICTIM) is None
    assert row(app, ANY_USERNAME, VICTIM).failures == limit - 1  # the address's count stands
    fail(at(app, VICTIM), limit - 1)
    with app.app_context():
        db.session.execute(sa.update(LoginThrottle).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    fail(at(app, VICTIM), 1, username="nobody")  # any failure purges lapsed counters
    assert row(app, "county", VICTIM) is None
    assert row(app, ANY_USERNAME, VICTIM).failures == 1
    fail(at(app, VICTIM), limit - 1)
    assert login(at(app, VICTIM), "county").status_code in (302, 303)


def test_one_address_trying_many_usernames_is_delayed_as_a_whole(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_IP_FAILURE_LIMIT", 12)
    attacker = at(app, ATTACKER)
    for n in range(12):
        fail(attacker, 1, username=f"guess{n}")
    assert login(attacker, "county").status_code == 429
    assert login(attacker, "guess99").status_code == 429
    assert login(at(app, VICTIM), "county").status_code in (302, 303)
    assert throttle_events(app) == [f"地址 {ATTACKER} 登录失败 12 次（各用户名合计），暂停 1 分钟"]


def test_failures_are_audited_once_per_throttled_pair_and_never_per_unknown_username(app, world):
    limit = app.config["LOGIN_FAILURE_LIMIT"]
    attacker = at(app, ATTACKER)
    for name in ("nobody", "admin1", "root"):
        fail(attacker, limit, username=name)
    assert throttle_events(app) == []
    fail(attacker, limit)
    lapse_delays(app)
    fail(attacker, 1)
    assert throttle_events(app) == [f"登录失败 {limit} 次，暂停 1 分钟（用户名 county，地址 {ATTACKER}）"]
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "login_throttled"))
        assert (event.entity_type, event.entity_id, event.ip) == ("users", world.county, ATTACKER)
        assert (
            db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "login_failed")) == 0
        )


def test_administrator_unlocks_a_username_at_every_address(app, world):
    limit = app.config["LOGIN_FAILURE_LIMIT"]
    fail(at(app, ATTACKER), limit)
    fail(at(app, VICTIM), limit)
    admin = at(app, "192.0.2.1")
    assert login(admin, "admin").status_code in (302, 303)
    page = admin.get(f"/admin/users/{world.county}").get_data(as_text=True)
    assert "登录失败记录" in page and ATTACKER in page and VICTIM in page and "解除登录限制" in page
    response = admin.post(f"/admin/users/{world.county}/unlock-login", follow_redirects=True)
    assert "已解除 county 的登录限制（2 个地址）" in response.get_data(as_text=True)
    assert login(at(app, VICTIM), "county").status_code in (302, 303)
    assert login(at(app, ATTACKER), "county").status_code in (302, 303)
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "login_unlocked"))
        assert event.entity_id == world.county and event.actor_name == "测试用户"
    page = admin.get(f"/admin/users/{world.county}").get_data(as_text=True)
    assert "登录失败记录" not in page
    response = admin.post(f"/admin/users/{world.county}/unlock-login", follow_redirects=True)
    assert "county 目前没有登录限制" in response.get_data(as_text=True)


def test_forwarded_for_is_ignored_without_production(app, world):
    limit = app.config["LOGIN_FAILURE_LIMIT"]
    attacker = at(app, ATTACKER)
    for n in range(limit):
        response = attacker.post(
            "/login", data={"username": "county", "password": WRONG}, headers={"X-Forwarded-For": f"10.9.9.{n}"}
        )
        assert response.status_code == 200
    assert login(attacker, "county").status_code == 429
    with app.app_context():
        assert set(db.session.scalars(sa.select(LoginThrottle.ip))) == {ATTACKER}


@pytest.fixture
def production(database_url):
    """The app as deployed behind one proxy: PRODUCTION with PROXY_COUNT=1 (ProxyFix), on the test database."""
    app = create_app(make_test_config(database_url) | {"PRODUCTION": True, "PROXY_COUNT": 1})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def via_proxy(app, forwarded_for, username, password):
    """A request through our proxy (127.0.0.1), which appends the client's real address to X-Forwarded-For."""
    return at(app, "127.0.0.1").post(
        "/login",
        base_url="https://localhost",
        data={"username": username, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )


def test_behind_a_proxy_a_spoofed_forwarded_address_neither_escapes_nor_locks_a_victim(app, production, world):
    limit = production.config["LOGIN_FAILURE_LIMIT"]
    # The attacker claims the victim's address, and a new one each time; the proxy appends the real one.
    for n in range(limit):
        spoofed = VICTIM if n % 2 else f"10.9.9.{n}"
        assert via_proxy(production, f"{spoofed}, {ATTACKER}", "county", WRONG).status_code == 200
    assert via_proxy(production, f"10.1.1.1, {ATTACKER}", "county", WRONG).status_code == 429
    assert via_proxy(production, f"{VICTIM}, {ATTACKER}", "county", WRONG).status_code == 429
    # The victim's own attempt, through the same proxy, logs in.
    assert via_proxy(production, VICTIM, "county", "correct-horse-battery").status_code in (302, 303)
    with app.app_context():
        assert set(db.session.scalars(sa.select(LoginThrottle.ip))) == {ATTACKER}
