"""Shared fixtures: a store URL on each backend (SQLite, PostgreSQL, DuckDB), fresh per test."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql", "duckdb")


#: Environment variables a pytest-xdist worker gets as the run was started (xdist's workers see
#: COLUMNS=80 and LINES=24, which would change the width of every table the CLI prints).
_WORKER_ENV = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """pytest-xdist, in the controller: pass each worker the terminal variables as given."""
    node.workerinput["riskengine_env"] = {k: os.environ.get(k) for k in _WORKER_ENV}  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    for backend in BACKENDS:
        config.addinivalue_line("markers", f"{backend}: runs against the {backend} store backend")
    given = getattr(config, "workerinput", {}).get("riskengine_env")
    if given is not None:  # a pytest-xdist worker: the run's terminal variables, not xdist's
        for name, value in given.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _pg_base_url() -> sa.URL:
    from riskengine.store.engine import resolve_url

    return sa.make_url(resolve_url(os.environ.get("RISKENGINE_TEST_PG_URL", DEFAULT_PG_URL)))


@functools.cache
def _pg_problem() -> str | None:
    """Why the test PostgreSQL server cannot be used, or ``None`` when it can."""
    engine = sa.create_engine(_pg_base_url())
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure to reach the server means the same to the tests
        return f"PostgreSQL at {_pg_base_url()!r} is unreachable: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def require_postgresql() -> None:
    """Fail (in CI, ``CI=true``) or skip (elsewhere) when the test server is unreachable."""
    problem = _pg_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(problem + " (CI must test PostgreSQL; start the server)", pytrace=False)
    pytest.skip(problem)


@pytest.fixture
def pg_schema() -> Iterator[tuple[sa.URL, str]]:
    """A fresh PostgreSQL schema, dropped afterwards: (base URL, schema name)."""
    require_postgresql()
    base = _pg_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base, schema
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _pg_url(base: sa.URL, schema: str) -> str:
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(
    params=[pytest.param(b, marks=getattr(pytest.mark, b), id=b) for b in BACKENDS],
)
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A URL of an empty store: a temporary SQLite or DuckDB file, or a fresh PostgreSQL schema
    (``RISKENGINE_TEST_PG_URL``, default the local server's ``test`` database)."""
    backend = request.param
    if backend == "sqlite":
        yield f"sqlite:///{os.path.join(tmp_path, 'store.db')}"
    elif backend == "duckdb":
        yield f"duckdb:///{os.path.join(tmp_path, 'store.duckdb')}"
    else:
        base, schema = request.getfixturevalue("pg_schema")
        yield _pg_url(base, schema)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An engine on an empty store database (no schema yet)."""
    from riskengine.store.engine import connect

    engine = connect(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Initialised store files made once per session, copied for each test that needs one."""
    return {"dir": str(tmp_path_factory.mktemp("store-templates"))}


def _template_file(templates: dict[str, str], backend: str) -> str:
    from riskengine.store import migrate

    path = templates.get(backend)
    if path is None:
        suffix = "db" if backend == "sqlite" else "duckdb"
        path = os.path.join(templates["dir"], f"template.{suffix}")
        migrate.init(f"{backend}:///{path}")
        templates[backend] = path
    return path


@pytest.fixture(scope="session")
def _pg_store_schema() -> Iterator[tuple[sa.URL, str]]:
    """One PostgreSQL schema with the store's tables for the session; emptied before each use."""
    from riskengine.store import migrate

    require_postgresql()
    base = _pg_base_url()
    schema = f"s_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        migrate.init(_pg_url(base, schema))
        yield base, schema
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=[pytest.param(b, marks=getattr(pytest.mark, b), id=b) for b in BACKENDS],
)
def store_url(
    request: pytest.FixtureRequest, tmp_path: os.PathLike[str], _templates: dict[str, str]
) -> str:
    """A URL of a store with the schema initialised and no data, on each backend."""
    import shutil

    from riskengine.store.schema import TABLES

    backend = request.param
    if backend in ("sqlite", "duckdb"):
        target = os.path.join(tmp_path, os.path.basename(_template_file(_templates, backend)))
        shutil.copyfile(_templates[backend], target)
        return f"{backend}:///{target}"
    base, schema = request.getfixturevalue("_pg_store_schema")
    url = _pg_url(base, schema)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for table in reversed(TABLES.metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[sa.Engine]:
    """An engine on an initialised, empty store (revisions + catalogue columns)."""
    from riskengine.store.engine import connect

    engine = connect(store_url)
    try:
        yield engine
    finally:
        engine.dispose()


# The load cache (riskengine/evaluator/cache.py) is off for the suite, so that every load is
# the cold one and nothing is written to the user's cache folder; tests/test_load_cache.py
# tests it with folders of its own.
os.environ["RISKENGINE_CACHE_DIR"] = "off"
