"""Demonstration disclosure notices: a few counties' published notices (drafted from the demo projects and funds),
one withdrawn, postings at village, township and county, and a complaint that was answered.

Idempotent: a county that has notices already is left alone.
"""

from datetime import date, timedelta

import sqlalchemy as sa

from registry.counties.models import Unit
from registry.disclosure import services
from registry.disclosure.models import ComplaintChannel, Notice, NoticeType
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError

#: (county code, issuing unit, local supervision number)
COUNTIES = [
    ("513431", "昭觉县乡村振兴局", "0834-3322317"),
    ("513429", "布拖县乡村振兴局", "0834-8522317"),
    ("513432", "喜德县乡村振兴局", "0834-7212317"),
]


def _notice(county: Unit, issuing_unit: str, phone: str, notice_type: NoticeType, year: int, start: date):
    """Draft and publish one notice (published as of its window's first day); None when there is nothing to say."""
    data = {
        "county_id": county.id, "year": year, "type": notice_type.value, "issuing_unit": issuing_unit,
        "local_phone": phone, "window_start": start, "window_end": start + timedelta(days=9),
    }  # fmt: skip
    try:
        notice = services.create_notice(data, actor=None)
        return services.publish(notice, actor=None, today=start)
    except ServiceError:
        return None


def load(today: date | None = None) -> str:
    today = today or date.today()
    published = withdrawn = 0
    for code, issuing_unit, phone in COUNTIES:
        county = db.session.scalar(sa.select(Unit).where(Unit.code == code))
        if county is None or db.session.scalar(sa.select(Notice.id).where(Notice.county_id == county.id).limit(1)):
            continue
        year = today.year
        start = max(date(year, 3, 1), today - timedelta(days=60))
        plan = _notice(county, issuing_unit, phone, NoticeType.ANNUAL_PLAN, year, start)
        if plan is None:
            continue
        published += 1
        places = ("人民政府门户网站", "城关镇政务公开栏", "城关镇某村村务公开栏")
        for place in (county.name + p for p in places):
            services.add_posting(plan, {"place": place, "posted_on": plan.window_start}, actor=None)
        complaint = services.add_complaint(
            plan,
            {"received_on": plan.window_start + timedelta(days=2), "channel": ComplaintChannel.PHONE,
             "content": "群众来电询问项目带贫机制中务工岗位的报名方式。"},
            actor=None,
        )  # fmt: skip
        services.answer_complaint(
            complaint,
            {"answered_on": plan.window_start + timedelta(days=3),
             "answer": "已电话答复：岗位由实施单位在村委会公开招聘，脱贫户优先，报名至村委会。"},
            actor=None,
        )  # fmt: skip
        allocation = _notice(county, issuing_unit, phone, NoticeType.ALLOCATION, year, today - timedelta(days=3))
        if allocation is not None:
            published += 1
            posting = {"place": f"{county.name}人民政府门户网站", "posted_on": allocation.window_start}
            services.add_posting(allocation, posting, actor=None)
        if code == "513429":
            start = today - timedelta(days=20)
            arrangement = _notice(county, issuing_unit, phone, NoticeType.ARRANGEMENT, year, start)
            if arrangement is not None:
                services.withdraw(arrangement, "部分项目实施地点登记有误，更正后重新公告。", actor=None)
                withdrawn += 1
    return f"公告公示 {published} 份（另撤回 {withdrawn} 份）"
