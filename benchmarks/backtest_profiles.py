"""Profiles for the backtest benchmarks, and the hand-written SQL baseline that selects the same.

``demo_profiles(n, seed)`` generates ``n`` profiles with :mod:`gen_profiles` (the templates and
the spread of the evaluator benchmark) but over the goods headings and offices of the demo data
(``riskengine.demo``), so that they select declarations of the benchmark store; the
templates' trader ids are kept (they rarely occur in the demo data).

``handwritten_sql(texts, start, end)`` is the baseline of issue 5: what an engineer would write
by hand, for DuckDB, for the same selection. It reads each profile's parameters from its source
text with regular expressions (one writer per template of ``gen_profiles``) and does **not** use
riskengine's parser, model or SQL compiler. Per goods item, each profile's degree is a sum of
plain ``CASE WHEN ... THEN points`` terms; per declaration (``GROUP BY``), ``bool_or`` of
"not excepted and degree ≥ threshold (and the control's condition)" per control; then one row
of counts: declarations per profile and, per profile and control form, the declarations it
applies to. History (``negative_history`` / ``positive_history`` per declarant over 365 days)
is one window sum per profile over one timeline of declarations, non-completed clearances and
clean controls ordered by day, partitioned by declarant.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import gen_profiles  # noqa: E402

from riskengine import demo  # noqa: E402

DEMO_HEADINGS = sorted({code[:4] for goods in demo.GOODS for code in goods.codes})
DEMO_OFFICES = [office for office, _ in demo.OFFICES]


@contextmanager
def _demo_vocabulary() -> Iterator[None]:
    saved = gen_profiles.SENSITIVE, gen_profiles.OFFICES
    gen_profiles.SENSITIVE = DEMO_HEADINGS
    gen_profiles.OFFICES = DEMO_OFFICES
    try:
        yield
    finally:
        gen_profiles.SENSITIVE, gen_profiles.OFFICES = saved


def demo_profiles(n: int, seed: int = 0) -> dict[str, str]:
    """``n`` generated profiles (``{file name: text}``) over the demo data's headings/offices."""
    with _demo_vocabulary():
        return gen_profiles.profile_sources(n, seed)


# --- the hand-written baseline ------------------------------------------------------------------


def profile_blocks(texts: dict[str, str]) -> list[str]:
    """Every profile's source text, in file order."""
    out: list[str] = []
    for _, text in sorted(texts.items()):
        out += ["profile " + b for b in re.split(r"^profile ", text, flags=re.M) if b.strip()]
    return out


def _strings(text: str, after: str) -> list[str]:
    """The quoted strings of the parenthesised list that follows ``after``."""
    match = re.search(re.escape(after) + r"\s*\(([^)]*)\)", text)
    assert match, after
    return re.findall(r'"([^"]*)"', match.group(1))


def _number(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    assert match, pattern
    return match.group(1)


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(_q(v) for v in values)})"


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _prefix(column: str, prefixes: list[str]) -> str:
    # the prefixes are digits: LIKE has no wildcard to escape
    return "(" + " OR ".join(f"{column} LIKE '{p}%'" for p in prefixes) + ")"


class _Profile:
    """One profile as hand-written SQL: per-item degree and per-control conditions."""

    def __init__(self, n: int, text: str):
        self.n = n
        self.key = _number(text, r"^profile (\S+)")
        self.name = _number(text, r'^profile \S+ "([^"]+)"')
        self.kind = self.name.split(" #")[0]
        self.text = text
        self.reasons: dict[str, Decimal] = {}  # history: reason code -> coefficient
        self.excluded = "FALSE"
        # (code, threshold, extra condition or None)
        self.controls: list[tuple[str, int, str | None]] = []
        self.degree = self._build()

    @property
    def history(self) -> bool:
        return bool(self.reasons)

    def _build(self) -> str:
        t = self.text
        if self.kind == "Undervaluation":
            goods = _prefix("i.hs_code", _strings(t, "item.hs_code starts with"))
            origin = _in("i.origin", _strings(t, "item.origin in"))
            floor = _number(t, r"item\.customs_value / item\.net_mass < (\d+)")
            cheap = (f"(i.net_mass <> 0 AND i.customs_value / i.net_mass < {floor} "
                     "AND i.preference IS DISTINCT FROM 'GSP')")  # fmt: skip
            method = "i.valuation_method <> '1'"
            self.excluded = "coalesce(d.declarant_aeo, FALSE)"
            self.controls = [("103", 40, None), ("104", 60, origin), ("202", 80, None)]
            degree = (f"CASE WHEN {goods} AND {cheap} THEN 40 ELSE 0 END"
                      f" + CASE WHEN {goods} AND {origin} THEN 20 ELSE 0 END"
                      f" + CASE WHEN {goods} AND {method} THEN 10 ELSE 0 END")  # fmt: skip
            if "negative_history - positive_history" in t:
                block = _number(t, r"negative max 30 per case 10 \{([^}]*)\}")
                self.reasons = {
                    code: Decimal(coef) for code, coef in re.findall(r"(\d{4}): ([\d.]+)", block)
                }
                assert "positive max 10 per clean control 2" in t
                assert "history per declaration.declarant.id over 365 days" in t
                degree += f" + h.neg{self.n} - h.pos{self.n}"
            return degree
        if self.kind == "Misclassification":
            heading = _prefix("i.hs_code", _strings(t, "item.hs_code starts with"))
            word = _number(t, r'item\.description matches "\(\?i\)\.\*(\w+)\.\*"')
            words = f"i.description ILIKE '%{word}%'"
            zero = "i.duty_rate = 0"
            self.controls = [("102", 50, None), ("302", 70, zero)]
            return (f"CASE WHEN {heading} AND {words} THEN 50 ELSE 0 END"
                    f" + CASE WHEN {heading} AND {zero} THEN 20 ELSE 0 END")  # fmt: skip
        if self.kind == "False origin":
            goods = _prefix("i.hs_code", _strings(t, "item.hs_code starts with"))
            origin = _in("i.origin", _strings(t, "item.origin in"))
            self.controls = [("105", 50, None), ("201", 75, None)]
            return (f"CASE WHEN {goods} AND {origin} THEN 50 ELSE 0 END"
                    " + CASE WHEN d.dispatch_country <> i.origin THEN 25 ELSE 0 END")  # fmt: skip
        if self.kind == "Office monitoring":
            office = _in("d.office", _strings(t, "declaration.office in"))
            goods = _prefix("i.hs_code", _strings(t, "item.hs_code starts with"))
            self.controls = [("203", 70, goods), ("204", 90, None)]
            return (f"CASE WHEN {office} THEN 40 ELSE 0 END"
                    f" + CASE WHEN {office} AND {goods} THEN 30 ELSE 0 END"
                    " + CASE WHEN d.regime = '40' THEN 10 ELSE 0 END"
                    " + CASE WHEN i.gross_mass > 20000 THEN 20 ELSE 0 END")  # fmt: skip
        if self.kind == "Risky traders":
            trader = _in("d.declarant_id", _strings(t, "declaration.declarant.id in"))
            value = "i.customs_value > 500000"
            self.controls = [("102", 60, None), ("201", 80, value)]
            return (f"CASE WHEN {trader} THEN 60 ELSE 0 END"
                    " + CASE WHEN d.broker_id IS NULL THEN 10 ELSE 0 END"
                    f" + CASE WHEN {value} THEN 20 ELSE 0 END")  # fmt: skip
        if self.kind == "Mass ratio":
            ratio = _number(t, r"item\.net_mass / item\.gross_mass > ([\d.]+)")
            self.controls = [("204", 100, None)]
            return (f"CASE WHEN i.gross_mass <> 0 AND i.net_mass / i.gross_mass > {ratio} "
                    "THEN 40 ELSE 0 END"
                    " + CASE WHEN i.packages < 2 THEN 30 ELSE 0 END"
                    " + CASE WHEN i.container IS NULL THEN 30 ELSE 0 END")  # fmt: skip
        raise ValueError(f"no hand-written SQL for the template {self.kind!r}")


def _history_sql(profiles: list[_Profile], start: dt.date, end: dt.date) -> str:
    """negative/positive history per declaration of the period, one column pair per profile."""
    since = start - dt.timedelta(days=365)
    codes = sorted({c for p in profiles for c in p.reasons})
    units = ",\n".join(
        "max(CASE r.reason_code "
        + " ".join(f"WHEN '{c}' THEN {coef}" for c, coef in sorted(p.reasons.items()))
        + f" ELSE 0 END) AS u{p.n}"
        for p in profiles
    )
    zeros = "".join(f", 0 AS u{p.n}" for p in profiles)
    nulls_units = "".join(f", u{p.n}" for p in profiles)
    sums = ",\n".join(f"sum(u{p.n}) OVER w AS nu{p.n}" for p in profiles)
    values = ",\n".join(
        f"least(30, 10 * coalesce(nu{p.n}, 0)) AS neg{p.n}, "
        f"least(10, 2 * coalesce(clean, 0)) AS pos{p.n}"
        for p in profiles
    )
    return f"""
scored AS (
    SELECT r.decl_pk, {units}
    FROM outcome_reasons r
    WHERE r.reason_code IN ({", ".join(_q(c) for c in codes)})
    GROUP BY r.decl_pk
),
timeline AS (
    SELECT d.pk AS decl_pk, d.declarant_id AS subject, d.date - DATE '1970-01-01' AS day,
           0 AS is_clean{zeros}
    FROM declarations d
    WHERE d.date BETWEEN DATE '{start}' AND DATE '{end}'
    UNION ALL
    SELECT NULL, p.declarant_id, o.date - DATE '1970-01-01', 0{nulls_units}
    FROM clearance_outcomes o JOIN scored s ON s.decl_pk = o.decl_pk
    JOIN declarations p ON p.pk = o.decl_pk
    WHERE NOT o.completed AND o.date >= DATE '{since}' AND o.date <= DATE '{end}'
      AND p.declarant_id IS NOT NULL
    UNION ALL
    SELECT NULL, p.declarant_id, c.date - DATE '1970-01-01', 1{zeros}
    FROM control_results c JOIN declarations p ON p.pk = c.decl_pk
    WHERE NOT c.violation_found AND c.date >= DATE '{since}' AND c.date <= DATE '{end}'
      AND p.declarant_id IS NOT NULL
),
windowed AS (
    SELECT decl_pk, {sums},
           sum(is_clean) OVER w AS clean
    FROM timeline
    WINDOW w AS (PARTITION BY subject ORDER BY day RANGE BETWEEN 365 PRECEDING AND 1 PRECEDING)
),
history AS (
    SELECT decl_pk, {values}
    FROM windowed WHERE decl_pk IS NOT NULL
)"""


def _ctes(profiles: list[_Profile], start: dt.date, end: dt.date) -> str:
    """``WITH`` history (if any), ``scored_items`` (per item) and ``per_declaration``."""
    with_history = [p for p in profiles if p.history]
    item_cols = []
    decl_cols = []
    for p in profiles:
        item_cols.append(f"{p.excluded} AS x{p.n}")
        item_cols.append(f"{p.degree} AS g{p.n}")
        for code, _, cond in p.controls:
            if cond is not None:
                item_cols.append(f"coalesce({cond}, FALSE) AS k{p.n}_{code}")
        for code, threshold, cond in p.controls:
            test = f"NOT x{p.n} AND g{p.n} >= {threshold}"
            if cond is not None:
                test += f" AND k{p.n}_{code}"
            decl_cols.append(f"bool_or({test}) AS p{p.n}_c{code}")
    ctes = []
    history_join = ""
    if with_history:
        ctes.append(_history_sql(with_history, start, end))
        history_join = "LEFT JOIN history h ON h.decl_pk = d.pk"
    nl = ",\n    "
    ctes.append(f"""scored_items AS (
    SELECT d.pk,
    {nl.join(item_cols)}
    FROM declarations d
    LEFT JOIN items i ON i.decl_pk = d.pk
    {history_join}
    WHERE d.date BETWEEN DATE '{start}' AND DATE '{end}'
)""")
    ctes.append(f"""per_declaration AS (
    SELECT pk,
    {nl.join(decl_cols)}
    FROM scored_items GROUP BY pk
)""")
    return "WITH " + ",\n".join(c.strip() for c in ctes) + "\n"


def _fires(p: _Profile) -> str:
    return " OR ".join(f"p{p.n}_c{c}" for c, _, _ in p.controls)


def handwritten(
    texts: dict[str, str], start: dt.date, end: dt.date
) -> tuple[str, list[tuple[str, list[str]]]]:
    """The baseline query and, per profile, its key and control codes.

    The query returns one row: ``considered``, then per profile ``n``: ``p{n}`` (declarations
    selected), ``p{n}_c{code}`` per control code (declarations it applied to), in the order of
    the returned list."""
    profiles = [_Profile(n, text) for n, text in enumerate(profile_blocks(texts))]
    out_cols = ["count(*) AS considered"]
    for p in profiles:
        out_cols.append(f"count(*) FILTER ({_fires(p)}) AS p{p.n}")
        out_cols += [f"count(*) FILTER (p{p.n}_c{c}) AS p{p.n}_c{c}" for c, _, _ in p.controls]
    sql = _ctes(profiles, start, end) + "SELECT " + ",\n    ".join(out_cols)
    sql += "\nFROM per_declaration"
    return sql, [(p.key, [c for c, _, _ in p.controls]) for p in profiles]


def selection_fingerprints_sql(texts: dict[str, str], start: dt.date, end: dt.date) -> str:
    """The baseline's selected declarations per profile, as ``n{n}`` (count), ``s{n}`` (Σ pk),
    ``h{n}`` (Σ hash(pk)): compared with riskengine's to check that both select exactly the
    same declarations."""
    profiles = [_Profile(n, text) for n, text in enumerate(profile_blocks(texts))]
    cols = []
    for p in profiles:
        fires = _fires(p)
        cols += [
            f"count(*) FILTER ({fires}) AS n{p.n}",
            f"coalesce(sum(pk) FILTER ({fires}), 0) AS s{p.n}",
            f"coalesce(sum(hash(pk)) FILTER ({fires}), 0) AS h{p.n}",
        ]
    return _ctes(profiles, start, end) + "SELECT " + ",\n    ".join(cols) + "\nFROM per_declaration"


def read_counts(row: Any, keys: list[tuple[str, list[str]]]) -> dict[str, dict[str, int]]:
    """``{profile key: {"selected": n, code: n...}}`` from the baseline's result row."""
    values = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    out: dict[str, dict[str, int]] = {}
    for n, (key, codes) in enumerate(keys):
        counts = {"selected": int(values[f"p{n}"])}
        counts.update({c: int(values[f"p{n}_c{c}"]) for c in codes})
        out[key] = counts
    return out
