"""Serve one of the fidelity apps, in their own environment:
`.venv-apps/bin/python tests/contract/apps/serve.py NAME PORT DIR`.

Each app runs in its own process, on 127.0.0.1, single process (no reloader, no debugger), so it
stops with its PID. `DIR` holds whatever the app keeps on disk (a SQLite database).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HOST = "127.0.0.1"

#: The administrator the Flask-AppBuilder app is seeded with; its JWT authenticates the runs.
FAB_USER = ("admin", "fidelity-admin")


def serve_httpbin(port: int, directory: Path) -> None:
    from httpbin import app
    from werkzeug.serving import run_simple

    run_simple(HOST, port, app, threaded=True)


def serve_fab(port: int, directory: Path) -> None:
    """Flask-AppBuilder's own REST API (security: users, roles, permissions, groups; menu) with
    its OpenAPI view, on a fresh SQLite database seeded with one administrator."""
    from flask import Flask
    from flask_appbuilder import AppBuilder
    from flask_appbuilder.models.sqla.base import SQLA
    from werkzeug.serving import run_simple

    database = directory / "fab.db"
    database.unlink(missing_ok=True)
    app = Flask("fidelity-fab")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
        SECRET_KEY="release-warden-fidelity",
        FAB_API_SWAGGER_UI=True,
        FAB_ADD_SECURITY_API=True,
        WTF_CSRF_ENABLED=False,
    )
    db = SQLA(app)
    with app.app_context():
        security = AppBuilder(app, db.session).sm
        username, password = FAB_USER
        admin = security.find_role("Admin")
        security.add_user(username, "Ada", "Admin", "admin@example.org", admin, password=password)
    run_simple(HOST, port, app, threaded=True)


def serve_piccolo(port: int, directory: Path) -> None:
    """Piccolo Admin's demo app (movies, directors, studios...) on a fresh SQLite database."""
    os.chdir(directory)  # the demo keeps its SQLite database and media in the working directory
    import uvicorn
    from piccolo_admin.example.app import APP, create_schema, populate_data, set_engine

    set_engine("sqlite")
    create_schema(persist=False)
    populate_data(inflate=0, engine="sqlite")
    uvicorn.run(APP, host=HOST, port=port, log_level="warning")


SERVERS = {"httpbin": serve_httpbin, "fab": serve_fab, "piccolo": serve_piccolo}


def main(argv: list[str]) -> None:
    name, port, directory = argv
    SERVERS[name](int(port), Path(directory))


if __name__ == "__main__":
    main(sys.argv[1:])
