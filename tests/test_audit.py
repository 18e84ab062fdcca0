"""The audit trail: one event per change in the same transaction, and the administrators' log."""

import sqlalchemy as sa

from registry.agreements.models import Indicator
from registry.kernel.audit.models import AuditEvent
from registry.kernel.extensions import db
from registry.pairings.models import Pairing
from tests.conftest import login


def _events(app, **where):
    with app.app_context():
        stmt = sa.select(AuditEvent).order_by(AuditEvent.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, key) == value)
        return [(e.action, e.entity_type, e.entity_id, e.actor_name, e.changes) for e in db.session.scalars(stmt)]


def test_a_change_writes_one_event_with_actor_and_diff(app, client, world):
    login(client, "province")
    before = len(_events(app, entity_type="pairings"))
    data = {
        "east_unit_id": str(world.yuyao),
        "west_unit_id": str(world.zhaojue),
        "level": "county",
        "programme_id": str(world.zc),
        "valid_from": "2021-04-01",
        "source": "新文件",
        "version": "1",
    }
    client.post(f"/pairings/{world.a}/edit", data=data)
    events = _events(app, entity_type="pairings")
    assert len(events) == before + 1
    action, _, entity_id, actor, changes = events[-1]
    assert (action, entity_id, actor, changes) == ("update", world.a, "测试用户", {"source": ["", "新文件"]})


def test_a_failed_change_leaves_no_event_and_no_write(app, client, world):
    login(client, "province")
    before = _events(app)
    data = {
        "east_unit_id": str(world.yuyao),
        "west_unit_id": str(world.zhaojue),
        "level": "county",
        "programme_id": str(world.zc),
        "valid_from": "2021-04-01",
        "valid_to": "2020-01-01",
        "version": "1",
    }
    client.post(f"/pairings/{world.a}/edit", data=data)
    after = _events(app)
    assert after == before
    with app.app_context():
        assert db.session.get(Pairing, world.a).valid_to is None


def test_record_page_shows_history_with_labels(client, world):
    login(client, "province")
    text = client.get(f"/pairings/{world.a}").get_data(as_text=True)
    assert "变更记录" in text and "新建" in text and "东部单位" in text and "四川省凉山彝族自治州昭觉县" in text


def test_admin_log_filters(client, world):
    login(client, "admin")
    text = client.get("/admin/audit/?entity_type=pairings").get_data(as_text=True)
    assert "新建结对" in text and "新建用户" not in text
    text = client.get("/admin/audit/?action=login").get_data(as_text=True)
    assert "登录" in text and "新建结对" not in text
    text = client.get("/admin/audit/?start=2000-01-01&end=2000-01-02").get_data(as_text=True)
    assert "没有符合条件的记录" in text
    text = client.get("/admin/audit/?start=bad&entity_id=abc").get_data(as_text=True)
    assert "新建结对" in text  # unparseable filters are ignored, not errors


def test_audit_log_is_not_for_other_roles(client, world):
    login(client, "province")
    assert client.get("/admin/audit/").status_code == 403


def test_values_are_labelled_from_what_each_column_declares(app, world):
    """Labels come from the model of the event's table: a foreign key shows the referenced record's name, an enum
    its label, 分 in 元, a boolean 是/否; a key that is no column (an indicator name) or an unknown table stays raw."""
    from registry.kernel.audit.queries import to_rows

    with app.app_context():
        changes = {
            "origin_county_id": [None, world.zhaojue],
            "pairing_id": [None, world.a],
            "household": [None, "lifted"],
            "monthly_wage_fen": [None, 523456],
            "organised": [None, True],
        }
        events = [
            AuditEvent(id=1, action="create", entity_type="placements", changes=changes),
            AuditEvent(
                id=2,
                action="create",
                entity_type="indicator_entries",
                changes={"indicator_id": [None, world.indicator_builtin]},
            ),
            AuditEvent(id=3, action="targets", entity_type="agreements", changes={"项目数": [None, 3]}),
            AuditEvent(id=4, action="update", entity_type="gone", changes={"county_id": [1, 2]}),
        ]
        indicator = db.session.get(Indicator, world.indicator_builtin)
        rows = {(row.id, c.field): c.new for row in to_rows(events) for c in row.changes}
    assert rows[1, "origin_county_id"] == "四川省凉山彝族自治州昭觉县"
    assert rows[1, "pairing_id"] == "余姚市 ↔ 昭觉县"  # a pairing is named by its two partners (audit_names)
    assert rows[1, "household"] == "脱贫户"
    assert rows[1, "monthly_wage_fen"] == "5,234.56 元"
    assert rows[1, "organised"] == "是"
    assert rows[2, "indicator_id"] == indicator.name
    assert rows[3, "项目数"] == "3"
    assert rows[4, "county_id"] == "2"
