"""The change history in words users write (issue 26 item 4): a pairing by its two partners, a record type by its
name, an asset's source projects with money in 元 — never an id, a table name or a Python list of 分."""

from registry.kernel.audit.models import AuditEvent
from registry.kernel.audit.queries import to_rows


def _shown(entity_type: str, changes: dict) -> dict[str, tuple[str, str]]:
    event = AuditEvent(id=1, action="update", entity_type=entity_type, entity_id=1, summary="", changes=changes)
    return {c.label: (c.old, c.new) for c in to_rows([event])[0].changes}


def test_a_pairing_is_named_by_its_partners(app, world_records):
    w = world_records
    shown = _shown("placements", {"pairing_id": [None, w.a.id]})
    assert list(shown.values()) == [("（空）", "余姚市 ↔ 昭觉县")]


def test_a_record_type_is_its_name(app, world_records):
    shown = _shown("problem_links", {"record_type": ["projects", "fund_transactions"]})
    assert list(shown.values()) == [("帮扶项目", "资金往来")]


def test_an_assets_sources_are_written_in_yuan(app, world_records):
    before, after = [["XM-1", 100_000_00, 0]], [["XM-1", 80_000_00, 20_000_00]]
    ((old, new),) = _shown("assets", {"sources": [before, after]}).values()
    assert old == "XM-1（东部财政援助资金 100,000.00 元，其他资金 0.00 元）"
    assert new == "XM-1（东部财政援助资金 80,000.00 元，其他资金 20,000.00 元）"
    assert "[" not in old + new
