"""The fuzzed profiles and the small stores of ``benchmarks/fuzz_pipeline.py``.

:func:`make_case` draws one case: a sample profile of ``profiles/`` (with its fills) with
numbers, operators and regexes mutated, or a template profile with generated expressions (random
typed expressions, edge numbers, deep nesting, wide sums and chains, catastrophic regexes,
history coefficients). :data:`STORES` are the declarations every accepted profile is scored and
backtested on: edge values a trader could declare, and values at the limits of floating point.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "duckdb", "postgresql")
PERIOD = (dt.date(2026, 10, 1), dt.date(2026, 12, 31))

# ------------------------------------------------------------------------------------- numbers

#: Edge numbers as the language writes them (no exponent syntax: written out in digits).
E308 = "1" + "0" * 308
E_MINUS_300 = "0." + "0" * 299 + "1"
HUGE_LITERAL = "9" * 310
EDGE_NUMBERS = (
    "0",
    "0.1",
    "1",
    "1.4",
    "0.3",
    "100",
    "4199999.99",
    "10000",
    "185.5",
    E308,
    E_MINUS_300,
    HUGE_LITERAL,
    "120000000000000000000000000000",
    "1" + "0" * 39,
    "99999999999999999999",
    "0.000001",
    "12.50",
    "1000000",
)

#: Classic catastrophic patterns (and a huge repetition count).
EVIL_REGEXES = (
    "(a+)+$",
    "(a|aa)+$",
    "(a|a?)+$",
    "(.*a){12}$",
    "^(a+)+b",
    "(x+x+)+y",
    "(\\\\w+\\\\s?)+$",
    "a{99999999999}",
    "(a*)*b",
    "([a-z]+)*!",
    "(a|b|ab)*c",
    "^(([a-z])+.)+[A-Z]([a-z])+$",
)
PLAIN_REGEXES = ("boots?", "(?i)lamp", "[A-Z]{3}U[0-9]{7}", "", ".*", "(?is).*(vodka|spirit).*")

NUMBER_FIELDS = (
    "item.customs_value",
    "item.net_mass",
    "item.gross_mass",
    "item.packages",
    "item.supplementary_quantity",
    "declaration.invoice_total",
    "declaration.exchange_rate",
)
TEXT_FIELDS = ("item.description", "item.hs_code", "item.origin", "declaration.declarant.id")
COMPARES = ("<", "<=", ">", ">=", "==", "!=")

# --------------------------------------------------------------------------------- the template

TEMPLATE = """profile draft "Fuzz {n}" {{
    indicators {{
        a "A": {ind_a}
        b "B": {ind_b}
    }}
    exceptions {{
        aeo "AEO": declaration.declarant.aeo
    }}
    degree = {degree}
    message "Fuzz {{item.hs_code}}: {{degree}}"
    controls {{
        103 "Verification" mandatory from {from1}
        202 "Inspection" if necessary when a from {from2}
    }}
    history per declaration.declarant.id over {window} days {{
        negative max {nmax} per case {case} {{ 0201: {c1}  0302: {c2} }}
        positive max {pmax} per clean control {step}
    }}
}}
"""

SLOTS_DEFAULT = {
    "ind_a": "item.customs_value / item.net_mass < 420",
    "ind_b": 'item.description matches "boots?"',
    "degree": "40 * a + 20 * b + negative_history - positive_history",
    "from1": "40",
    "from2": "60",
    "window": "365",
    "nmax": "30",
    "case": "10",
    "c1": "1.0",
    "c2": "0.1",
    "pmax": "20",
    "step": "4",
}
NUMBER_SLOTS = ("from1", "from2", "window", "nmax", "case", "c1", "c2", "pmax", "step")


# ------------------------------------------------------------------------------ expression shapes


def _num_atom(rng: random.Random, in_degree: bool) -> str:
    atoms = [rng.choice(NUMBER_FIELDS), rng.choice(NUMBER_FIELDS), rng.choice(EDGE_NUMBERS[:10])]
    if in_degree:
        atoms += ["negative_history", "40 * a", "b"]
    return rng.choice(atoms)


def num_expr(rng: random.Random, depth: int, in_degree: bool = True) -> str:
    """A random numeric expression (fields, literals, arithmetic, functions, conditionals);
    ``in_degree``: it may use the indicators and history (not inside an indicator)."""
    if depth <= 0 or rng.random() < 0.25:
        return _num_atom(rng, in_degree)
    kind = rng.randrange(9)
    d = depth - 1

    def sub() -> str:
        return num_expr(rng, d, in_degree)

    if kind <= 2:
        return f"{sub()} {rng.choice('+-*/')} {sub()}"
    if kind == 3:
        return f"({sub()})"
    if kind == 4:
        return f"-{sub()}"
    if kind == 5:
        return f"{rng.choice(('max', 'min'))}({sub()}, {sub()})"
    if kind == 6:
        return f"abs({sub()})"
    if kind == 7:
        return rng.choice((f"round({sub()})", f"round({sub()}, {rng.choice('0125')})"))
    return f"if {bool_expr(rng, d, in_degree)} then {sub()} else {sub()}"


def bool_expr(rng: random.Random, depth: int, in_degree: bool = False) -> str:
    """A random boolean expression."""
    if depth <= 0 or rng.random() < 0.3:
        kind = rng.randrange(6)
        if kind == 0:
            atom = _num_atom(rng, in_degree)
            return f"{atom} {rng.choice(COMPARES)} {rng.choice(EDGE_NUMBERS[:12])}"
        if kind == 1:
            return f'{rng.choice(TEXT_FIELDS)} matches "{rng.choice(PLAIN_REGEXES)}"'
        if kind == 2:
            return 'item.origin in ("CN", "VN", "")'
        if kind == 3:
            return 'item.hs_code starts with ("64", "8528")'
        if kind == 4:
            return f"{rng.choice(NUMBER_FIELDS)} is missing"
        return "item.customs_value / item.net_mass < 1"
    kind = rng.randrange(5)
    d = depth - 1

    def b() -> str:
        return bool_expr(rng, d, in_degree)

    def n() -> str:
        return num_expr(rng, d, in_degree)

    if kind == 0:
        return f"{b()} and {b()}"
    if kind == 1:
        return f"{b()} or {b()}"
    if kind == 2:
        return f"not ({b()})"
    if kind == 3:
        return f"{n()} between {n()} and {n()}"
    return f"{n()} {rng.choice(COMPARES)} {n()}"


def deep_num(kind: str, depth: int) -> str:
    """A numeric expression nested ``depth`` levels deep."""
    core = "item.customs_value"
    if kind == "neg":
        return "-" * depth + core if depth % 2 == 0 else "- " * depth + core
    if kind == "negparen":
        return "-(" * depth + core + ")" * depth
    if kind == "paren":
        return "(" * depth + core + ")" * depth
    if kind in ("max", "min"):
        return f"{kind}(" * depth + core + ", 1)" * depth
    if kind == "round":
        return "round(" * depth + core + ", 2)" * depth
    if kind == "abs":
        return "abs(" * depth + core + ")" * depth
    if kind == "if":
        return "if a then (" * depth + core + ") else 1" * depth
    if kind == "sum_paren":
        return "(1 + " * depth + core + ")" * depth
    raise ValueError(kind)


DEEP_NUM_KINDS = ("neg", "negparen", "paren", "max", "min", "round", "abs", "if", "sum_paren")
DEEP_BOOL_KINDS = ("not", "notparen", "paren", "and_paren")


def deep_bool(kind: str, depth: int) -> str:
    core = "item.net_mass > 1"
    if kind == "not":
        return "not " * depth + core
    if kind == "notparen":
        return "not (" * depth + core + ")" * depth
    if kind == "paren":
        return "(" * depth + core + ")" * depth
    if kind == "and_paren":
        return "(item.packages > 1 and " * depth + core + ")" * depth
    raise ValueError(kind)


def wide_sum(width: int) -> str:
    return " + ".join(f"{k % 7 + 1} * a" for k in range(width))


def wide_chain(op: str, width: int) -> str:
    return f" {op} ".join(f"item.net_mass > {k}" for k in range(width))


# ------------------------------------------------------------------------------------- mutations


@dataclass
class Case:
    """One fuzzed profile set: ``{file name: text}``, what was done, and the shape parameters
    (for minimization)."""

    sources: dict[str, str]
    what: str
    build: Callable[[int], dict[str, str]] | None = None  # rebuild with a smaller size
    size: int = 0
    #: The unmutated profile set this case came from, and what it is.
    base: tuple[str, dict[str, str]] | None = None


def plain_case(case: Case) -> Case | None:
    """The case's base profile set, unmutated (``None`` when the case is that already)."""
    if case.base is None or case.base[1] == case.sources:
        return None
    return Case(dict(case.base[1]), f"unmutated: {case.base[0]}", base=case.base)


def _template(n: int, **slots: str) -> dict[str, str]:
    values = dict(SLOTS_DEFAULT)
    values.update(slots)
    return {f"fuzz_{n}.rp": TEMPLATE.format(n=n, **values)}


def _templated(n: int, what: str, slots: dict[str, str] | None = None) -> Case:
    base = (
        "the template profile (indicator a: item.customs_value / item.net_mass < 420)",
        _template(n),
    )
    return Case(_template(n, **(slots or {})), what, base=base)


def sample_texts() -> list[tuple[str, dict[str, str]]]:
    """Each sample profile file with the fills of its profile."""
    folder = ROOT / "profiles/fills"
    fills = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.rp"))}
    out = []
    for path in sorted((ROOT / "profiles").glob("*.rp")):
        text = path.read_text(encoding="utf-8")
        mine = {name: t for name, t in fills.items() if name.startswith(path.stem + ".")}
        out.append((path.name, {path.name: text, **mine}))
    return out


NUMBER_RE = re.compile(r"(?<![\w./\-])\d+(?:\.\d+)?(?![\w/\-.])")
OPERATOR_RE = re.compile(r"(?<=\s)(<=|>=|==|!=|<|>|\+|-|\*|/|and|or)(?=\s)")
OPERATORS = ("<", "<=", ">", ">=", "==", "!=", "+", "-", "*", "/", "and", "or")
MATCHES_RE = re.compile(r'matches\s+"((?:[^"\\\n]|\\.)*)"')


def _renumber(sources: dict[str, str], n: int) -> dict[str, str]:
    """Give the sample's profile number a unique sequence part, in the profile and its fills,
    so that many mutants can be backtested in one pass."""
    out = {}
    for name, text in sources.items():
        text = re.sub(
            r"\b([0-9A-Z]{2}/\d{2}/\d{4}/)(\d{5})(-\d{2})",
            lambda m: f"{m.group(1)}{n % 100000:05d}{m.group(3)}",
            text,
        )
        out[f"m{n}_{name}"] = text
    return out


def _mutate_text(rng: random.Random, text: str) -> tuple[str, str]:
    """One text-level mutation of a sample profile: a number, an operator or a regex."""
    kind = rng.randrange(3)
    if kind == 0:
        spots = list(NUMBER_RE.finditer(text))
        if spots:
            spot = rng.choice(spots)
            new = rng.choice(EDGE_NUMBERS)
            line = text.count("\n", 0, spot.start()) + 1
            return text[: spot.start()] + new + text[spot.end() :], (
                f"line {line}: number {spot.group()} -> {shorten(new)}"
            )
    if kind == 1:
        spots = list(OPERATOR_RE.finditer(text))
        if spots:
            spot = rng.choice(spots)
            new = rng.choice(OPERATORS)
            line = text.count("\n", 0, spot.start()) + 1
            return text[: spot.start()] + new + text[spot.end() :], (
                f"line {line}: operator {spot.group()} -> {new}"
            )
    spots = list(MATCHES_RE.finditer(text))
    if spots:
        spot = rng.choice(spots)
        new = rng.choice(EVIL_REGEXES + PLAIN_REGEXES)
        line = text.count("\n", 0, spot.start()) + 1
        return text[: spot.start()] + f'matches "{new}"' + text[spot.end() :], (
            f'line {line}: matches "{new}"'
        )
    return text, "unchanged"


def shorten(text: str, limit: int = 60) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:25]}...({len(text)} chars)...{text[-25:]}"


def make_case(rng: random.Random, n: int, samples: Sequence[tuple[str, dict[str, str]]]) -> Case:
    """The ``n``-th fuzzed case."""
    samples_by_name = dict(samples)
    choice = rng.random()
    if choice < 0.3:
        name, sources = samples[rng.randrange(len(samples))]
        sources = dict(sources)
        whats = []
        for _ in range(rng.randint(1, 3)):
            target = rng.choice(sorted(sources))
            sources[target], what = _mutate_text(rng, sources[target])
            whats.append(f"{target}: {what}")
        base = (f"sample {name}", _renumber(samples_by_name[name], n))
        return Case(_renumber(sources, n), f"sample {name}; " + "; ".join(whats), base=base)
    shape = rng.randrange(9)
    if shape == 0:  # random typed expressions
        ind_a = bool_expr(rng, rng.randint(1, 5))
        degree = num_expr(rng, rng.randint(1, 5))
        what = f"random: a: {shorten(ind_a, 200)}; degree = {shorten(degree, 200)}"
        return _templated(n, what, {"ind_a": ind_a, "degree": degree})
    if shape == 1:  # edge numbers in the numeric slots
        slots = {s: rng.choice(EDGE_NUMBERS) for s in rng.sample(NUMBER_SLOTS, rng.randint(1, 3))}
        desc = ", ".join(f"{k} = {shorten(v)}" for k, v in slots.items())
        return _templated(n, f"template numbers: {desc}", slots)
    if shape == 2:  # edge numbers in the expressions
        number = rng.choice(EDGE_NUMBERS)
        field_ = rng.choice(NUMBER_FIELDS)
        op = rng.choice(COMPARES)
        ind = f"item.customs_value / item.net_mass {op} {number}"
        deg = f"{rng.choice(EDGE_NUMBERS)} * a + {field_} / {number}"
        slots = rng.choice(({"ind_a": ind}, {"degree": deg}))
        return _templated(n, f"edge literal: {shorten(next(iter(slots.values())))}", slots)
    if shape in (3, 4):  # deep nesting
        depth = rng.choice((1, 2, 10, 33, 34, 35, 50, 99, 100, 101, 120, 150, rng.randint(1, 150)))
        if shape == 3:
            kind = rng.choice(DEEP_NUM_KINDS)

            def build_num(d: int, kind: str = kind) -> dict[str, str]:
                return _template(n, degree=f"40 * a + {deep_num(kind, d)}")

            build: Callable[[int], dict[str, str]] = build_num
            what = f"degree = 40 * a + {kind} nested {{size}} deep"
        else:
            kind = rng.choice(DEEP_BOOL_KINDS)

            def build_bool(d: int, kind: str = kind) -> dict[str, str]:
                return _template(n, ind_a=deep_bool(kind, d))

            build = build_bool
            what = f"indicator a: {kind} nested {{size}} deep"
        return Case(build(depth), what, build, depth, _templated(n, "").base)
    if shape in (5, 6):  # wide sums and chains
        width = rng.choice((1, 2, 50, 101, 102, 202, 500, 1000, rng.randint(1, 1000)))
        if shape == 5:

            def build_sum(w: int) -> dict[str, str]:
                return _template(n, degree=wide_sum(w))

            build = build_sum
            what = "degree = a sum of {size} terms"
        else:
            op = rng.choice(("and", "or"))

            def build_chain(w: int, op: str = op) -> dict[str, str]:
                return _template(n, ind_a=wide_chain(op, w))

            build = build_chain
            what = f"indicator a: an {op}-chain of {{size}} comparisons"
        return Case(build(width), what, build, width, _templated(n, "").base)
    if shape == 7:  # catastrophic regexes
        pattern = rng.choice(EVIL_REGEXES)
        field_ = rng.choice(("item.description", "item.description", "item.hs_code"))
        what = f'indicator b: {field_} matches "{pattern}"'
        return _templated(n, what, {"ind_b": f'{field_} matches "{pattern}"'})
    # history coefficients, windows and caps
    slots = {
        "c1": rng.choice(("1.2", "120000000000000000000000000000", E308, "0.1", "0", E_MINUS_300)),
        "c2": rng.choice(("0.1", "0.3", HUGE_LITERAL, "1")),
        "case": rng.choice(("10", "0.1", E308, "1")),
        "nmax": rng.choice(("30", E308, "0", "0.1")),
        "window": rng.choice(("365", "0", "1", "99999999", "36500")),
    }
    keep = dict(rng.sample(sorted(slots.items()), rng.randint(1, 3)))
    desc = ", ".join(f"{k} = {shorten(v)}" for k, v in keep.items())
    return _templated(n, f"history: {desc}", keep)


# ------------------------------------------------------------------------------------ the stores

LONG = "a" * 10_000
LONG_BANG = "a" * 9_999 + "!"


def _decl(ident: str, day: dt.date, items: list[dict[str, Any]], **header: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {
        "id": ident,
        "date": day.isoformat(),
        "office": "UA500110",
        "regime": "40",
        "declarant": {"id": "D1", "aeo": False},
        "importer": {"id": "I1"},
        "items": items,
    }
    decl.update(header)
    return decl


def _item(**values: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "hs_code": "6403990000",
        "origin": "CN",
        "description": "Leather boots",
        "customs_value": 1000.0,
        "net_mass": 10.0,
    }
    item.update(values)
    return {k: v for k, v in item.items() if v is not None}


def edge_declarations() -> list[dict[str, Any]]:
    """Edge values a trader could declare (the 'edge' store)."""
    d = dt.date(2026, 10, 5)
    out = [
        _decl("E01", d, [_item(customs_value=1.4, net_mass=1.4)]),
        _decl("E02", d, [_item(customs_value=4199999.99, net_mass=10000, hs_code="8528721000")]),
        _decl("E03", d, [_item(customs_value=None, net_mass=None, description=None)]),
        _decl("E04", d + dt.timedelta(days=1), [_item(description=LONG)]),
        _decl("E05", d + dt.timedelta(days=1), [_item(description=LONG_BANG)]),
        _decl("E06", d + dt.timedelta(days=2), [_item(customs_value=0.3, net_mass=0.1)]),
        _decl("E07", d + dt.timedelta(days=2), [_item(customs_value=0.1 + 0.2, net_mass=0.3)]),
        _decl(
            "E08",
            d + dt.timedelta(days=3),
            [_item(customs_value=185.5, net_mass=1)],
            office="UA100110",
        ),
        _decl("E09", d + dt.timedelta(days=3), [_item(customs_value=0, net_mass=0)]),
        _decl("E10", d + dt.timedelta(days=4), []),
        _decl("E11", d + dt.timedelta(days=4), [_item(description="", hs_code="", origin="")]),
        _decl(
            "E12",
            d + dt.timedelta(days=5),
            [_item(description="Жіночі чоботи ëé\u212a"), _item(customs_value=-5, net_mass=2)],
        ),
        _decl(
            "E13",
            d + dt.timedelta(days=30),
            [_item(packages=3, gross_mass=12)],
            declarant={"id": "D1", "aeo": True},
        ),
        _decl("E14", d + dt.timedelta(days=40), [_item(customs_value=1e-300, net_mass=1)]),
    ]
    return out


def extreme_declarations() -> list[dict[str, Any]]:
    """Values at the limits of floating point (the 'extreme' store)."""
    d = dt.date(2026, 10, 5)
    return [
        _decl("X01", d, [_item(customs_value=1e308, net_mass=0.1)]),
        _decl("X02", d, [_item(customs_value=1e39, net_mass=1)]),
        _decl("X03", d + dt.timedelta(days=1), [_item(customs_value=1e-300, net_mass=1e300)]),
        _decl("X04", d + dt.timedelta(days=1), [_item(customs_value=1.7e308, net_mass=1e-300)]),
        _decl("X05", d + dt.timedelta(days=2), [_item(customs_value=12.5, net_mass=0.1)]),
    ]


def history_events(ids: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """Outcomes (non-completed, with reasons) and clean controls of the first declarations, so
    that later declarations of declarant D1 have history."""
    from riskengine.store.writer import ControlRecord, OutcomeRecord

    day = dt.date(2026, 10, 5)
    outcomes = [
        OutcomeRecord(ids[0], False, day, ("0201",)),
        OutcomeRecord(ids[1], False, day, ("0302",)),
        OutcomeRecord(ids[2], False, day + dt.timedelta(days=1), ("0302", "0201")),
    ]
    controls = [
        ControlRecord(ids[0], "103", day, False),
        ControlRecord(ids[1], "202", day, True, revenue=None),
    ]
    return outcomes, controls


STORES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "edge": edge_declarations,
    "extreme": extreme_declarations,
}


def write_store(url: str, raws: Sequence[dict[str, Any]]) -> None:
    """Create the store at ``url`` and write the declarations with some history."""
    from riskengine.declaration import normalise_declaration
    from riskengine.store import migrate
    from riskengine.store.engine import connect
    from riskengine.store.writer import write_controls, write_declarations, write_outcomes

    migrate.init(url)
    engine = connect(url)
    try:
        decls = [as_stored(raw, normalise_declaration) for raw in raws]
        outcomes, controls = history_events([str(r["id"]) for r in raws])
        with engine.begin() as conn:
            write_declarations(conn, decls)
        with engine.begin() as conn:
            write_outcomes(conn, outcomes)
        with engine.begin() as conn:
            write_controls(conn, controls)
    finally:
        engine.dispose()


def as_stored(raw: dict[str, Any], normalise: Callable[[dict[str, Any]], Any]) -> Any:
    """A declaration as a store may hold it: normalised, but with its numbers as given, also
    those the input rule refuses today (1e308, negative masses: data loaded before the rule, or
    a bring-your-own table), so that the backends' arithmetic on them is exercised."""
    import attrs

    def numbers(record: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }

    plain = {k: v for k, v in raw.items() if k not in numbers(raw)}
    plain["items"] = [
        {k: v for k, v in item.items() if k not in numbers(item)} for item in raw.get("items", ())
    ]
    decl = normalise(plain)
    header = {**decl.header, **numbers(raw)}
    items = tuple(
        {**typed, **numbers(given)}
        for typed, given in zip(decl.items, raw.get("items", ()), strict=True)
    )
    return attrs.evolve(decl, header=header, items=items)


@contextlib.contextmanager
def stores(backends: Sequence[str], folder: Path) -> Iterator[dict[tuple[str, str], str]]:
    """URLs of the stores: (backend, store name) -> URL; PostgreSQL schemas dropped after."""
    import sqlalchemy as sa

    urls: dict[tuple[str, str], str] = {}
    schemas: list[str] = []
    pg = os.environ.get("RISKENGINE_BENCH_PG_URL", DEFAULT_PG_URL)
    admin = sa.create_engine(pg) if "postgresql" in backends else None
    try:
        for backend in backends:
            for name, make in STORES.items():
                if backend == "sqlite":
                    url = f"sqlite:///{folder / f'{name}.db'}"
                elif backend == "duckdb":
                    url = f"duckdb:///{folder / f'{name}.duckdb'}"
                else:
                    assert admin is not None
                    schema = f"fz_{uuid.uuid4().hex[:10]}"
                    with admin.begin() as conn:
                        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
                    schemas.append(schema)
                    url = (
                        sa.make_url(pg)
                        .update_query_dict({"options": f"-csearch_path={schema}"})
                        .render_as_string(hide_password=False)
                    )
                write_store(url, make())
                urls[(backend, name)] = url
        yield urls
    finally:
        if admin is not None:
            for schema in schemas:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
