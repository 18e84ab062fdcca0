"""The world shared by read-only tests (``conftest.read_world``) is what a fresh world is, and a test sharing it
that writes is caught."""

import pytest

from registry.kernel.extensions import db
from tests.conftest import _READ


def test_the_shared_world_is_the_standard_world(app, read_world, world_snapshot):
    assert vars(read_world.ids) == vars(world_snapshot.ids)
    assert read_world.client("county").get("/").status_code == 200


def test_a_write_while_sharing_fails_and_empties_the_world(app, read_world):
    from registry.auth.models import User
    from registry.counties.models import Unit

    client, ids = read_world.client("admin"), read_world.ids
    with app.app_context():
        unit = db.session.get(Unit, ids.zhaojue)
        unit.name = "改名县"  # a write the gate would count: the unit's figures change
        from registry.kernel import versions

        versions.touch(unit.id)
        db.session.commit()
        assert db.session.get(User, ids.admin) is not None
    with pytest.raises(pytest.fail.Exception, match="wrote"):
        _READ.check(app)
    assert _READ.ids is None
    with app.app_context():
        assert db.session.get(Unit, ids.zhaojue) is None  # emptied: the next test restores afresh
    assert client.get("/").status_code in (302, 303)  # its session went with the world
