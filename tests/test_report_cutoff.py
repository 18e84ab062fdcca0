"""A quarter's report is a function of its cut-off alone (#24 item 1): records registered, dated, stepped, checked,
published, withdrawn, received or answered after the cut-off move none of its figures.

Each test builds a section's records as they stood at the end of 2024Q3 (registration times and step times set back
to the days they happened), takes the section's figures and the dashboard's table, then adds, changes and deletes
(where the stream deletes at all) records dated after 2024-09-30 through the services, and finds both unchanged.
"""

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from registry.assets import services as assets
from registry.assets.figures import report_section as assets_section
from registry.assets.models import Asset, AssetState, Condition
from registry.auth.models import Role
from registry.disclosure import services as disclosure
from registry.disclosure.figures import report_section as disclosure_section
from registry.disclosure.models import ComplaintChannel, NoticeType
from registry.kernel.extensions import db
from registry.kernel.periods import Quarter
from registry.problems import services as problems
from registry.problems.figures import report_section as problems_section
from registry.problems.models import Problem
from registry.projects.models import ProjectStatus
from registry.projects.services import change_status
from tests.conftest import login
from tests.factories import make_asset, make_problem, make_project, make_user

Q3 = Quarter.of(2024, 3)


@pytest.fixture
def w(world_records):
    return world_records


def at(*day) -> datetime:
    """A time on ``day`` (10:00 in China)."""
    return datetime(*day, 2, 0, tzinfo=UTC)


def county_client(app):
    client = app.test_client()
    assert login(client, "county").status_code in (302, 303)
    return client


def dashboard(client, unit_id, *markers) -> list[str]:
    """The dashboard's HTML between each pair of ``markers`` (a section's tables), as ``client`` sees it."""
    response = client.get(f"/reports/{unit_id}/{Q3}")
    assert response.status_code == 200, response.location
    page = response.get_data(as_text=True)
    parts = []
    for start, end in zip(markers[::2], markers[1::2], strict=True):
        match = re.search(re.escape(start) + ".*?" + re.escape(end), page, re.S)
        assert match, start
        parts.append(match.group(0))
    return parts


# ---- 七、项目资产管护 ---------------------------------------------------------------------------------------------

ASSET_TABLES = ("assets-formed", "待核实的补录资产")


def test_the_asset_section_is_the_register_as_it_stood_at_the_cutoff(app, w):
    zhaojue = w.zhaojue.id
    # Registered when handed over (2022): never checked since, so overdue at the cut-off.
    w.asset_a.created_at = at(2022, 7, 15)
    # A 2024 asset from the legacy path, registered in June and still 待核实 at the end of September.
    done = make_project(w.zhaojue, w.a, year=2024, status=ProjectStatus.COMPLETED, name="冷链仓储")
    legacy = make_asset(done, name="冷链库")
    legacy.created_at, legacy.needs_review = at(2024, 7, 20), True
    later_done = make_project(w.zhaojue, w.a, year=2024, status=ProjectStatus.COMPLETED, name="农产品加工")
    db.session.commit()
    section = assets_section([zhaojue], None, Q3, Q3.end)
    assert section.formed_total.count == 1 and section.register_total.count == 2
    assert dict((r.label, r.count) for r in section.by_state)["正常"] == 2
    assert (section.overdue_checks, section.awaiting_review) == (1, 1)
    client = county_client(app)
    page = dashboard(client, zhaojue, *ASSET_TABLES)

    # Added after the cut-off: an asset completed in May but registered today; a check in November.
    new = make_asset(later_done, name="加工厂房", completed_on=date(2024, 5, 1), handed_over_on=date(2024, 5, 20))
    assets.add_check(w.asset_a, {"checked_on": date(2024, 11, 5), "condition": Condition.GOOD}, actor=w.county)
    # Changed after the cut-off: confirmed, idle from December, another disposed of in 2025, fields edited.
    assets.confirm_asset(legacy, actor=w.county)
    assets.change_state(legacy, {"to_state": AssetState.IDLE, "changed_on": date(2024, 12, 1), "note": "停用"},
                        actor=w.county)  # fmt: skip
    assets.change_state(w.asset_a, {"to_state": AssetState.DISPOSED, "changed_on": date(2025, 2, 1), "note": "报废",
                                    "disposal_method": "报废", "disposal_decision": "村民代表大会决议"},
                        actor=w.county)  # fmt: skip
    assets.update_asset(new, {"caretaker": "县农业农村局", "completed_on": date(2024, 4, 1)}, actor=w.county)
    db.session.commit()

    assert assets_section([zhaojue], None, Q3, Q3.end) == section
    assert dashboard(client, zhaojue, *ASSET_TABLES) == page
    # Today's register has them all (the section of the current quarter is not frozen).
    today = Quarter.containing(date.today())
    now = assets_section([zhaojue], None, today, today.end)
    assert now.register_total.count == 3 and now.awaiting_review == 0
    assert dict((r.label, r.count) for r in now.by_state) == {
        "正常": 1, "闲置": 1, "低效": 0, "损毁": 0, "已处置": 1
    }  # fmt: skip


def test_an_asset_confirmed_before_the_migration_keeps_its_confirmation_time(w):
    """``confirmed_at`` is written by 核实; the section reads it (a confirmed record counts as 待核实 before it)."""
    w.asset_a.created_at, w.asset_a.needs_review = at(2024, 1, 5), True
    assets.confirm_asset(w.asset_a, actor=w.county)
    db.session.flush()
    assert db.session.get(Asset, w.asset_a.id).confirmed_at is not None
    assert assets_section([w.zhaojue.id], None, Q3, Q3.end).awaiting_review == 1
    today = Quarter.containing(date.today())
    assert assets_section([w.zhaojue.id], None, today, today.end).awaiting_review == 0


# ---- 九、公告公示 -----------------------------------------------------------------------------------------------

DISCLOSURE_TABLE = ("年已立项项目的公告公示情况", "</table>")


def _notice(w, notice_type=NoticeType.ANNUAL_PLAN):
    data = {"county_id": w.zhaojue.id, "year": 2024, "type": notice_type.value, "issuing_unit": "昭觉县乡村振兴局",
            "window_start": date.today(), "window_end": date.today() + timedelta(days=30)}  # fmt: skip
    return disclosure.create_notice(data, actor=w.county)


def test_the_disclosure_section_counts_notices_and_complaints_as_they_stood_at_the_cutoff(app, w):
    zhaojue = w.zhaojue.id
    # project_a (2024, 立项 2024-03-15) was published in an August notice; a complaint of September is still open.
    notice = _notice(w)
    disclosure.publish(notice, actor=w.county)
    notice.published_at, notice.window_start, notice.window_end = at(2024, 8, 1), date(2024, 8, 1), date(2024, 8, 10)
    open_one = disclosure.add_complaint(
        notice, {"received_on": date(2024, 8, 5), "channel": ComplaintChannel.PHONE, "content": "金额有疑问"},
        actor=w.county,
    )  # fmt: skip
    db.session.commit()
    section = disclosure_section(w.zhaojue, Q3, [zhaojue])
    (row,) = section.rows
    assert (row.projects, row.disclosed, row.notices, row.open_complaints) == (1, 1, 1, 1)
    client = county_client(app)
    page = dashboard(client, zhaojue, *DISCLOSURE_TABLE)

    # After the cut-off: a project approved in October, another notice published today, complaints received and
    # answered later, the August notice withdrawn, project_a terminated.
    october = make_project(w.zhaojue, w.a, year=2024, name="十月立项的项目")
    change_status(october, ProjectStatus.APPROVED, date(2024, 10, 15), actor=w.county)
    second = _notice(w, NoticeType.ARRANGEMENT)
    disclosure.publish(second, actor=w.county)
    disclosure.add_complaint(
        second, {"received_on": date(2024, 11, 2), "channel": ComplaintChannel.LETTER, "content": "是否公平"},
        actor=w.county,
    )  # fmt: skip
    disclosure.answer_complaint(open_one, {"answered_on": date(2024, 10, 20), "answer": "已说明"}, actor=w.county)
    disclosure.withdraw(notice, "发布有误", actor=w.county)
    change_status(w.project_a, ProjectStatus.TERMINATED, date(2024, 11, 1), actor=w.county, note="终止")
    db.session.commit()

    assert disclosure_section(w.zhaojue, Q3, [zhaojue]) == section
    assert dashboard(client, zhaojue, *DISCLOSURE_TABLE) == page
    (today,) = disclosure_section(w.zhaojue, Quarter.containing(date(2024, 12, 31)), [zhaojue]).rows
    assert (today.projects, today.notices, today.open_complaints) == (1, 1, 1)  # the year's end sees them


# ---- 问题整改 ---------------------------------------------------------------------------------------------------

PROBLEM_TABLES = ("整改台账 · 截至", "超期未销号的问题（截至")


def _backdate(problem: Problem, *days):
    for step, day in zip(problem.steps, days, strict=True):
        step.at = at(*day)


def test_the_problems_section_is_the_ledger_as_it_stood_at_the_cutoff(app, w):
    zhaojue = w.zhaojue.id
    _backdate(w.problem_a, (2024, 3, 20))
    late = make_problem(w.zhaojue, found_on=date(2024, 4, 10), deadline=date(2024, 8, 31), description="资产未移交")
    problems.add_progress(late, {"entry_on": date(2024, 8, 15), "text": "已移交一半", "rectified_fen": 100_000_00},
                          actor=w.county)  # fmt: skip
    _backdate(late, (2024, 4, 10), (2024, 8, 15))
    db.session.commit()
    section = problems_section(w.zhaojue, Q3.start, Q3.end)
    assert dict(section.by_state) == {"未整改": 1, "整改中": 1} and section.rectified_fen == 100_000_00
    assert [(r.id, r.rectified_fen) for r in section.overdue] == [(late.id, 100_000_00)]
    client = county_client(app)
    page = dashboard(client, zhaojue, *PROBLEM_TABLES)

    # After the cut-off: progress dated October, the overdue one requested and closed (双销号), a problem found in
    # October registered and changed, a link taken off.
    problems.add_progress(late, {"entry_on": date(2024, 10, 10), "text": "全部移交", "rectified_fen": 50_000_00},
                          actor=w.county)  # fmt: skip
    problems.request_close(late, actor=w.county)
    problems.sign_off(late, actor=make_user(Role.COUNTY, w.zhaojue, username="county_head"))  # not the requester
    problems.sign_off(late, actor=w.prefecture)
    october = make_problem(w.zhaojue, found_on=date(2024, 10, 5), deadline=date(2024, 10, 31))
    problems.update_problem(october, {"amount_fen": 5}, actor=w.county)
    problems.remove_link(w.problem_a, w.link_a.id, actor=w.county)
    db.session.commit()

    assert problems_section(w.zhaojue, Q3.start, Q3.end) == section
    assert dashboard(client, zhaojue, *PROBLEM_TABLES) == page
