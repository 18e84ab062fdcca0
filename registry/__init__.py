"""东西部协作台账: the application factory."""

import os

from flask import Flask
from werkzeug.routing import IntegerConverter


def create_app(test_config=None):
    """Create the app.

    Configuration precedence: ``registry.kernel.config.Config`` defaults, then ``instance/config.py``, then
    ``DATABASE_URL`` and ``REGISTRY_*`` environment variables (``REGISTRY_PRODUCTION=true``). ``test_config``
    is applied last and is meant for tests.
    """
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    configure(app, test_config)

    # deferred: app factory — importing the package (config, migrations' env) loads no extension or view.
    from registry import cli, security, tasks, templating
    from registry.auth import session as auth_session
    from registry.kernel import errors, extensions

    extensions.init_app(app)
    auth_session.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    security.init_app(app)
    cli.init_app(app)
    app.url_map.converters["int"] = IdConverter
    register_blueprints(app)
    tasks.init_app(app)
    # Spawned worker processes (PDF rendering, report batches) build their own app with this factory; handing it
    # down through the app keeps the packages below from importing the app that imports them.
    app.extensions["registry.create_app"] = create_app
    return app


def configure(app, test_config=None):
    """Load configuration in order of precedence and apply the production switch."""
    # deferred: app factory — nothing is read from the configuration until an app is built.
    from registry.kernel.config import (
        ID_KEY_FILE,
        PRODUCTION_OVERRIDES,
        load_id_number_key,
        load_secret_key,
        normalise_database_url,
    )

    app.config.from_object("registry.kernel.config.Config")
    app.config.from_pyfile("config.py", silent=True)
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config.from_prefixed_env("REGISTRY")
    if test_config:
        app.config.from_mapping(test_config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(app.instance_path)
    # Identity numbers are always encrypted: a configured key, else instance/id_number_key (generated on first
    # run, never under PRODUCTION, which refuses to start without a key). ID_NUMBER_KEY_FILE tells
    # `flask idnumbers rotate` whether it may replace the key itself (the file) or the operator must (config).
    configured = app.config.get("ID_NUMBER_KEY")
    app.config["ID_NUMBER_KEY"] = load_id_number_key(
        app.instance_path, configured, production=bool(app.config["PRODUCTION"]), committed=_key_in_use(app)
    )
    app.config["ID_NUMBER_KEY_FILE"] = None if configured else os.path.join(app.instance_path, ID_KEY_FILE)
    if app.config["PRODUCTION"]:
        app.config.update(PRODUCTION_OVERRIDES)
        # deferred: only a production app sits behind a proxy.
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def _key_in_use(app):
    """Asked only after a rotation was interrupted: which key the database's numbers are under."""

    def committed(new_key):
        # deferred: asked only after an interrupted key rotation, while the app is being configured
        from registry.placements.rotation import key_in_use

        return key_in_use(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path)(new_key)

    return committed


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route, bounded to the database's INTEGER: /projects/99999999999 is a 404 like any
    missing record, not an overflow error from the database."""

    def __init__(self, url_map, *args, **kwargs):
        # deferred: app factory — the converter is built with the app, web's request helpers load with it.
        from registry.kernel.web import MAX_ID

        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def register_blueprints(app):
    """Register one blueprint per domain package (the reference data's and the audit log's live in ``directory``)."""
    # deferred: app factory — the views (and through them every module's models) load when an app is built.
    from registry.agreements.views import bp as agreements_bp
    from registry.assets.views import bp as assets_bp
    from registry.auth.views import bp as auth_bp
    from registry.closing.views import bp as closing_bp
    from registry.directory.audit import bp as audit_bp
    from registry.directory.pairings import bp as pairings_bp
    from registry.directory.units import bp as counties_bp
    from registry.disclosure.public import bp as gongshi_bp
    from registry.disclosure.views import bp as disclosure_bp
    from registry.evidence.views import bp as evidence_bp
    from registry.exchanges.views import bp as exchanges_bp
    from registry.findings.views import bp as findings_bp
    from registry.main.views import bp as main_bp
    from registry.placements.views import bp as placements_bp
    from registry.problems.views import bp as problems_bp
    from registry.projects.views import bp as projects_bp
    from registry.purchases.views import bp as purchases_bp
    from registry.reports.views import bp as reports_bp

    blueprints = (
        main_bp, auth_bp, counties_bp, pairings_bp, projects_bp, placements_bp, purchases_bp, exchanges_bp,
        agreements_bp, reports_bp, closing_bp, audit_bp, evidence_bp, disclosure_bp, gongshi_bp,
        problems_bp, findings_bp, assets_bp,
    )  # fmt: skip
    for bp in blueprints:
        app.register_blueprint(bp)
    # deferred: app factory — the disclosure status joins the quarterly report without the report knowing it.
    from registry.disclosure.figures import report_section
    from registry.reports.queries import SECTIONS

    SECTIONS["disclosure"] = report_section
