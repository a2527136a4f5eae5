"""Shared material of the registry tests: drafts, their unit tests, a store with a backtest run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa

from riskengine.backtest.run import profile_sha256
from riskengine.store.engine import connect
from riskengine.store.migrate import init
from riskengine.store.schema import TABLES
from riskengine.syntax import parse
from tests.conftest import _pg_url

DRAFT = """\
# Footwear under-valuation: first draft.
profile draft "Undervalued footwear from China" {
    in force 2024-01-01 .. 2026-12-31
    module declaration
    spheres 101, 203
    filling central by "Customs value unit"
    indicators {
        footwear "Footwear": item.hs_code starts with ("6403", "6404")
        china "Chinese origin": item.origin == "CN"
        # the price floor of the price database
        cheap "Under 400 UAH per kg": item.customs_value / item.net_mass < 400
    }
    degree = 40 * footwear + 20 * china + 40 * cheap
    message "Check the value of {item.hs_code}: {item.customs_value} UAH for {item.net_mass} kg"
    controls {
        103 "Verification of the customs value" mandatory from 60
        201 "Physical inspection" if necessary from 100
    }
    contact "Ivan Petrenko" phone "+380 44 000 0000"
    note { threat "Under-valued footwear." }
}
"""

TESTS = """\
[[case]]
name = "cheap Chinese shoes"
as_of = 2025-05-05
fires = true
degree = 100

[case.declaration]
id = "D1"

[[case.declaration.items]]
hs_code = "6403990000"
origin = "CN"
customs_value = 1000
net_mass = 10
"""

REGIONAL = """\
profile draft "Low unit prices chosen by the office" {
    in force 2024-01-01 .. 2026-12-31
    filling regional by "Customs value divisions"
    module declaration
    spheres 101
    regional {
        headings: list of code "HS headings monitored by the office"
        max_unit_price: number "Customs value per kg at or below which the price is suspect"
    }
    indicators {
        goods "Goods monitored": item.hs_code starts with region.headings
        low "Low price": goods and item.customs_value / item.net_mass <= region.max_unit_price
    }
    degree = 60 * low
    message "Low unit price of {item.hs_code}"
    controls {
        103 "Verification of the customs value" mandatory from 60
    }
}
"""

REGIONAL_TESTS = """\
[[case]]
name = "no fill, no hit"
as_of = 2025-05-05
fires = false

[case.declaration]
id = "D1"

[[case.declaration.items]]
hs_code = "8418100000"
customs_value = 10
net_mass = 10
"""


def fill_text(number: str, order: str, order_date: str, valid: str) -> str:
    return f"""\
fill for {number} {{
    office UA100110 "Kyiv customs"
    order "{order}" of {order_date}
    valid {valid}

    values {{
        headings = ("8418", "8450")
        max_unit_price = 170
    }}
}}
"""


def new_store(url: str) -> sa.Engine:
    """A store at ``url`` with the schema at head."""
    init(url)
    return connect(url)


def record_backtest(store: sa.Engine, *texts: str, finished: bool = True) -> int:
    """Record a backtest run of ``texts`` as the backtest does (their canonical hashes); returns
    the run's key."""
    runs = TABLES.backtest_runs
    hashes = {}
    for text in texts:
        for profile in parse(text, "profile.rp").profiles:
            hashes[profile.key] = profile_sha256(profile)
    with store.begin() as connection:
        top = connection.execute(sa.select(sa.func.max(runs.c.pk))).scalar() or 0
        now = dt.datetime(2025, 1, 1, 12)
        connection.execute(
            sa.insert(runs),
            {
                "pk": top + 1,
                "started_at": now,
                "finished_at": now if finished else None,
                "engine": store.dialect.name,
                "profile_hashes": hashes,
            },
        )
    return int(top + 1)


class PgSite:
    """A store in a fresh PostgreSQL schema, its superuser engine, and a real LOGIN role per name
    of ``logins`` (``{schema}_{name}``) with one engine each; :meth:`close` drops the logins."""

    def __init__(self, base: sa.URL, schema: str, logins: Sequence[str]) -> None:
        self.base, self.schema = base, schema
        self.url = _pg_url(base, schema)
        self.admin = new_store(self.url)
        self.logins = {name: f"{schema}_{name}" for name in logins}
        self.engines: dict[str, sa.Engine] = {}
        with self.admin.begin() as connection:
            for login in self.logins.values():
                connection.execute(sa.text(f'CREATE ROLE "{login}" LOGIN'))

    def engine(self, who: str) -> sa.Engine:
        if who not in self.engines:
            url = _pg_url(self.base.set(username=self.logins[who]), self.schema)
            self.engines[who] = connect(url)
        return self.engines[who]

    def raw(self, who: str, statement: str) -> str:
        """Run one SQL statement as ``who``: the database's refusal (``""`` if it ran)."""
        try:
            with self.engine(who).begin() as connection:
                connection.execute(sa.text(statement))
        except sa.exc.DBAPIError as exc:
            return str(exc.orig)
        return ""

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        with self.admin.begin() as connection:
            for login in self.logins.values():
                connection.execute(sa.text(f'DROP OWNED BY "{login}"'))
                connection.execute(sa.text(f'DROP ROLE "{login}"'))
        self.admin.dispose()
