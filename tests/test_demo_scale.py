"""The province-scale data set (``flask demo load --scale province``) at a tiny fraction: every stream goes in
through its importer, the shapes the benches rely on are there, and an interrupted load resumes."""

from datetime import date

import pytest
import sqlalchemy as sa

from registry.demo import scale as demo_scale
from registry.kernel.extensions import db
from registry.kernel.services import ServiceError
from registry.placements.models import Placement
from registry.projects.models import FundTransaction, Project
from registry.purchases.models import Purchase


@pytest.fixture
def w(world_records):
    db.session.commit()
    return world_records


def test_a_small_province_set_loads_through_the_importers_and_resumes(w):
    summary = demo_scale.load_province(0.002, today=date(2026, 12, 7), echo=lambda text: None)
    assert "劳务协作" in summary
    assert all(demo_scale.done_streams().values())
    generated = sa.select(Placement).where(Placement.note == demo_scale.MARK)
    placements = db.session.scalars(generated).all()
    assert len(placements) > 1000
    people_counties: dict[int, set] = {}
    for p in placements:
        people_counties.setdefault(p.person_id, set()).add(p.origin_county_id)
        assert date(2022, 1, 1) <= p.start_date <= date(2026, 12, 7)
    if len({p.origin_county_id for p in placements}) > 1:  # the world pairs one county after 2021
        assert any(len(c) == 2 for c in people_counties.values())  # placed by two counties
    assert len(people_counties) < len(placements)  # some placed twice
    assert db.session.scalar(sa.select(sa.func.count(Project.id)).where(Project.code.like("PS-%"))) > 0
    assert db.session.scalar(sa.select(sa.func.count(Purchase.id)).where(Purchase.evidence_no.like("SC%"))) > 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count(FundTransaction.id)).where(FundTransaction.document_no.like("川协资%"))
        )
        > 0
    )
    with pytest.raises(ServiceError, match="已导入"):
        demo_scale.load_province(0.002, today=date(2026, 12, 7), echo=lambda text: None)
    # An interrupted load (its placements never committed) resumes with them alone.
    db.session.execute(sa.delete(Placement).where(Placement.note == demo_scale.MARK))
    db.session.commit()
    assert demo_scale.done_streams() == {"projects": True, "funds": True, "purchases": True, "placements": False}
    demo_scale.load_province(0.002, today=date(2026, 12, 7), echo=lambda text: None)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(generated.subquery())) > 1000
