"""The HTML backtest report as the commission opens it: well-formed, offline, charts, numbers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from riskengine.backtest.metrics import ProfileMetrics
from riskengine.backtest.output import cell
from riskengine.backtest.report import render_html, svg_line_chart, write_html
from riskengine.backtest.run import (
    BacktestError,
    BacktestOptions,
    BacktestResult,
    Comparison,
    ProfileResult,
    planned_from,
    run_backtest,
)
from riskengine.checks import CheckResult, check_sources
from tests.backtest_store import write_store

D = dt.date

# ------------------------------------------------------------------------------------ a small DOM

_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "wbr",
}


@attrs.define
class Node:
    tag: str
    attr: dict[str, str]
    children: list[Node | str] = attrs.Factory(list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str, **wanted: str) -> list[Node]:
        return [
            n
            for n in self.iter()
            if n.tag == tag and all(n.attr.get(k) == v for k, v in wanted.items())
        ]

    def find(self, tag: str, **wanted: str) -> Node:
        [node] = self.find_all(tag, **wanted)
        return node

    def classes(self) -> set[str]:
        return set(self.attr.get("class", "").split())


class StrictParser(HTMLParser):
    """Builds a tree and fails on any end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.errors: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if len(self.stack) == 1 or self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}> at {self.getpos()}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    """The document's tree; asserts that it is well-formed."""
    parser = StrictParser()
    parser.feed(text)
    parser.close()
    assert parser.errors == []
    assert [n.tag for n in parser.stack] == ["#document"], "unclosed elements"
    assert parser.doctype.lower() == "doctype html"
    return parser.root


def assert_offline(text: str, doc: Node) -> None:
    """Nothing to fetch: no script, no external resource, no absolute URL anywhere."""
    for node in doc.iter():
        assert node.tag not in ("script", "link", "iframe", "object", "img")
        for name in ("src", "href", "xlink:href", "action"):
            value = node.attr.get(name)
            if value is not None:
                assert value.startswith("#"), (node.tag, name, value)
    assert not re.search(r"url\(", text)
    assert "http://" not in text and "https://" not in text
    assert doc.find("meta", charset="utf-8") is not None


def section(doc: Node, n: int) -> Node:
    return doc.find("section", id=f"p{n}")


def charts(node: Node) -> list[Node]:
    return node.find_all("svg")


def points(svg: Node) -> list[Node]:
    return [c for c in svg.find_all("circle") if "pt" in c.classes()]


def summary_rows(doc: Node) -> dict[str, list[str]]:
    table = doc.find("table", id="summary")
    return {
        tr.attr["data-profile"]: [td.text() for td in tr.find_all("td")]
        for tr in table.find_all("tr")
        if "data-profile" in tr.attr
    }


SUMMARY = (
    "selected",
    "selectivity",
    "controls_carried",
    "hits",
    "hit_rate",
    "revenue",
    "detection_share",
)


def assert_summary_matches(doc: Node, result: BacktestResult) -> None:
    rows = summary_rows(doc)
    assert list(rows) == [p.key for p in result.profiles]
    for p in result.profiles:
        key, name, *numbers, flag = rows[p.key]
        assert (key, name) == (p.key, p.name)
        assert numbers == [cell(metric, getattr(p.total, metric)) for metric in SUMMARY]
        assert flag == ("HIGH" if p.total.high_selectivity else "")


# ------------------------------------------------------------------------------------ hand-built


def mtr(
    considered: int,
    selected: int,
    carried: int = 0,
    hits: int = 0,
    revenue: float = 0.0,
    violations: int = 0,
    random: tuple[int, int] = (0, 0),
    applied: dict[str, int] | None = None,
    high: float = 5.0,
) -> ProfileMetrics:
    """Metrics with their ratios worked out as the backtest defines them (None: nothing to
    divide by)."""
    selectivity = None if considered == 0 else 100 * selected / considered
    return ProfileMetrics(
        considered=considered,
        selected=selected,
        selectivity=selectivity,
        controls_applied=applied or {},
        controls_carried=carried,
        hits=hits,
        hit_rate=None if carried == 0 else hits / carried,
        revenue=revenue,
        revenue_per_control=None if carried == 0 else revenue / carried,
        detection_share=None if violations == 0 else hits / violations,
        random_hit_rate=None if random[0] == 0 else random[1] / random[0],
        high_selectivity=selectivity is not None and selectivity >= high,
    )


EVIL = '<script>alert("x")</script> Ухилення & «лапки» ' + "дуже довга назва " * 20


def profile_result(
    key: str,
    name: str,
    total: ProfileMetrics,
    series: Sequence[tuple[str, ProfileMetrics]] = (),
    breakdowns: dict[str, tuple[tuple[Any, ProfileMetrics], ...]] | None = None,
) -> ProfileResult:
    return ProfileResult(
        key=key,
        name=name,
        number=None,
        path="sql",
        reason=None,
        sha256="0" * 64,
        total=total,
        breakdowns=breakdowns or {},
        series=tuple(series),
    )


def hand_built() -> BacktestResult:
    jan, feb, mar = (
        mtr(100, 8, 4, 3, 1500.0, 5, (10, 1), {"102": 8, "201": 2}),
        mtr(80, 2, 0, 0, 0.0, 2, (8, 0), {"102": 2, "201": 0}),
        mtr(120, 5, 2, 1, 250.5, 3, (12, 2), {"102": 5, "201": 1}),
    )
    loud = profile_result(
        "loud",
        EVIL,
        mtr(300, 15, 6, 4, 1750.5, 10, (30, 3), {"102": 15, "201": 3}),
        [("2025-01", jan), ("2025-02", feb), ("2025-03", mar)],
        {
            "office": (
                ("UA100110", mtr(200, 14, 6, 4, 1750.5, 8, (20, 3))),
                (None, mtr(100, 1, 0, 0, 0.0, 2, (10, 0))),
            )
        },
    )
    quiet = profile_result(
        "2A/08/2013/00117-04",
        "Quiet profile",
        mtr(300, 0, 0, 0, 0.0, 10, (30, 3), {"103": 0}),
        [("2025-01", mtr(100, 0)), ("2025-02", mtr(80, 0)), ("2025-03", mtr(120, 0))],
        {"office": (("UA100110", mtr(200, 0)), (None, mtr(100, 0)))},
    )
    cmp = Comparison(
        "loud",
        "2A/08/2013/00117-04",
        {
            "selected": (15, 0, 15),
            "hit_rate": (4 / 6, None, None),
            "revenue": (1750.5, 0.0, 1750.5),
        },
        15,
        0,
        ("UA/2025/<b>1</b>", "UA/2025/2"),
        (),
    )
    return BacktestResult(
        options=BacktestOptions(D(2025, 1, 1), D(2025, 3, 31), by=("office",)),
        engine="sqlite",
        considered=300,
        profiles=(loud, quiet),
        comparisons=(cmp,),
        seconds=0.25,
        run_id=7,
    )


WHEN = dt.datetime(2025, 4, 2, 9, 30)


def test_hand_built_report_is_well_formed_and_offline() -> None:
    text = render_html(hand_built(), None, generated=WHEN)
    doc = parse(text)
    assert_offline(text, doc)
    header = doc.find("table", id="run").text()
    for shown in ("2025-01-01 .. 2025-03-31", "sqlite", "300", "#7", "2025-04-02 09:30"):
        assert shown in header


def test_profile_name_is_escaped_not_run() -> None:
    result = hand_built()
    text = render_html(result, None, generated=WHEN)
    doc = parse(text)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert doc.find_all("script") == []
    # the name reads exactly as written, in the summary and in the profile's heading
    assert summary_rows(doc)["loud"][1] == EVIL
    assert EVIL in section(doc, 0).find("h2").text()
    # an example id with markup in it is shown as text too
    assert "UA/2025/<b>1</b>" in doc.find("section", id="comparisons").text()


def test_summary_numbers_are_the_results() -> None:
    result = hand_built()
    doc = parse(render_html(result, None, generated=WHEN))
    assert_summary_matches(doc, result)
    rows = summary_rows(doc)
    assert rows["loud"][2] == "15" and rows["loud"][7] == "1,750.50"
    assert "high" in next(
        tr.classes() for tr in doc.find_all("tr") if tr.attr.get("data-profile") == "loud"
    )
    assert "10.00 %" in doc.find("p", id="baseline").text()  # 3 hits in 30 random controls


def test_undefined_ratios_show_a_dash() -> None:
    doc = parse(render_html(hand_built(), None, generated=WHEN))
    quiet = summary_rows(doc)["2A/08/2013/00117-04"]
    assert quiet[SUMMARY.index("hit_rate") + 2] == "—"
    assert quiet[SUMMARY.index("selectivity") + 2] == "0.00"
    # the group with no office reads "—" in the breakdown, its undefined hit rate too
    rows = section(doc, 0).find("table", **{"data-breakdown": "office"}).find_all("tr")
    none_row = [td.text() for td in rows[-1].find_all("td")]
    assert none_row[0] == "—" and none_row[1] == "100" and none_row[6] == "—"
    assert "selected no declaration" in section(doc, 1).text()


def test_one_chart_point_per_month_with_its_value() -> None:
    result = hand_built()
    doc = parse(render_html(result, None, generated=WHEN))
    for n, p in enumerate(result.profiles):
        sel, hit = charts(section(doc, n))
        for svg, metric, word in ((sel, "selectivity", "selectivity"), (hit, "hit_rate", "hit")):
            titles = [pt.find("title").text() for pt in points(svg)]
            assert len(titles) == len(p.series) == 3
            for title, (month, m) in zip(titles, p.series, strict=True):
                assert title.startswith(f"{month}: {word}")
                assert f" {cell(metric, getattr(m, metric))} %" in title
    # February: no control carried out -> a hollow marker, the line broken around it
    hit = charts(section(doc, 0))[1]
    feb = points(hit)[1]
    assert "none" in feb.classes() and "hit rate — %" in feb.find("title").text()
    assert hit.find_all("polyline") == []  # no two neighbouring months both have a hit rate
    sel = charts(section(doc, 0))[0]
    assert len(sel.find_all("polyline")) == 1


def test_breakdowns_forms_and_comparisons() -> None:
    doc = parse(render_html(hand_built(), None, generated=WHEN))
    loud = section(doc, 0)
    forms = loud.find("table", **{"class": "forms"})
    rows = [[td.text() for td in tr.find_all("td")] for tr in forms.find_all("tr")[1:]]
    assert rows == [["102", "—", "15", "100.00"], ["201", "—", "3", "20.00"]]
    quiet_forms = section(doc, 1).find("table", **{"class": "forms"})
    assert [td.text() for td in quiet_forms.find_all("td")][-1] == "—"  # 0 selected: no share
    cmp = doc.find("section", id="comparisons")
    deltas = {
        tds[0].text(): [td.text() for td in tds[1:]]
        for tr in cmp.find("table").find_all("tr")
        if (tds := tr.find_all("td"))
    }
    assert deltas["Declarations selected"] == ["15", "0", "+15"]
    assert deltas["Hit rate, %"] == ["66.67", "—", "—"]
    assert deltas["Revenue"] == ["1,750.50", "0.00", "+1,750.50"]
    changes = cmp.find("ul").text()
    assert "Newly selected by A (not by B): 15" in changes
    assert "No longer selected (by B, not by A): 0" in changes
    assert [a.attr["href"] for a in cmp.find_all("a")] == ["#p0", "#p1"]


def test_no_declarations() -> None:
    empty = mtr(0, 0, applied={"102": 0})
    result = BacktestResult(
        options=BacktestOptions(D(2025, 1, 1), D(2025, 2, 28), by=("regime",)),
        engine="sqlite",
        considered=0,
        profiles=(profile_result("draft", "Порожньо", empty),),
        comparisons=(),
        seconds=0.0,
    )
    text = render_html(result, None, generated=WHEN)
    doc = parse(text)
    assert_summary_matches(doc, result)
    _, _, *numbers, _ = summary_rows(doc)["draft"]
    assert numbers[SUMMARY.index("selectivity")] == "—"
    assert numbers[SUMMARY.index("detection_share")] == "—"
    assert "not recorded" in doc.find("table", id="run").text()
    assert "— (no random control in the period)" in doc.find("p", id="baseline").text()
    # each calendar month of the period still has its (hollow) point
    for svg in charts(section(doc, 0)):
        titles = [pt.find("title").text() for pt in points(svg)]
        assert [t[:7] for t in titles] == ["2025-01", "2025-02"]
        assert all("— (no declarations)" in t for t in titles)
    assert "No declarations." in section(doc, 0).find("table", **{"class": "breakdown"}).text()


def test_one_month_only() -> None:
    m = mtr(10, 1, 1, 1, 5.0, 1, (1, 0), {"102": 1})
    result = BacktestResult(
        options=BacktestOptions(D(2025, 5, 1), D(2025, 5, 31)),
        engine="duckdb",
        considered=10,
        profiles=(profile_result("p", "One month", m, [("2025-05", m)]),),
        comparisons=(),
        seconds=0.0,
    )
    doc = parse(render_html(result, None, generated=WHEN))
    sel, hit = charts(section(doc, 0))
    assert [pt.find("title").text()[:24] for pt in points(sel)] == ["2025-05: selectivity 10."]
    assert "2025-05: hit rate 100.00 %" in points(hit)[0].find("title").text()
    assert sel.find_all("polyline") == []
    assert doc.find_all("section", id="comparisons") == []


_TITLE = st.text(
    alphabet=st.sampled_from("<>&\"' абвЇї/\\{}script"), min_size=1, max_size=40
).filter(str.strip)


@settings(max_examples=40, deadline=None)
@given(
    name=_TITLE,
    months=st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 50)),
        min_size=1,
        max_size=30,
    ),
)
def test_any_name_and_series_render_well_formed(
    name: str, months: list[tuple[int, int, int]]
) -> None:
    series = []
    for k, (considered, selected, carried) in enumerate(months):
        selected = min(selected, considered)
        series.append((f"{2020 + k // 12}-{k % 12 + 1:02d}", mtr(considered, selected, carried)))
    total = mtr(sum(c for c, _, _ in months), sum(m.selected for _, m in series))
    end_year, end_month = 2020 + (len(months) - 1) // 12, (len(months) - 1) % 12 + 1
    result = BacktestResult(
        options=BacktestOptions(D(2020, 1, 1), D(end_year, end_month, 28)),
        engine="sqlite",
        considered=total.considered,
        profiles=(profile_result(name, name, total, series),),
        comparisons=(),
        seconds=0.0,
    )
    text = render_html(result, None, generated=WHEN)
    doc = parse(text)
    assert summary_rows(doc)[name][:2] == [name, name]
    for svg in charts(section(doc, 0)):
        assert len(points(svg)) == len(months)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 100)), min_size=1, max_size=40))
def test_chart_scale_holds_every_value(values: list[float | None]) -> None:
    svg = parse(
        "<!DOCTYPE html>"
        + svg_line_chart([(str(i), v, f"{i}: {v}") for i, v in enumerate(values)], title="t")
    ).find("svg")
    y_axis = svg.find("line", **{"class": "axis y-axis"})
    top, bottom = float(y_axis.attr["y1"]), float(y_axis.attr["y2"])
    for pt in points(svg):
        assert top <= float(pt.attr["cy"]) <= bottom
    labels = [float(t.text()) for t in svg.find_all("text") if t.attr.get("text-anchor") == "end"]
    assert labels[0] == 0 and labels[-1] >= max((v for v in values if v is not None), default=0)


# ------------------------------------------------------------------------------------ real runs

PROFILES = {
    "excise.rp": """
profile 7G/07/2012/00048-05 "Ухилення від сплати акцизного податку: дешеві товари з Китаю" {
    approved 2012-01-11
    in force 2012-03-15 .. 2012-12-31
    filling central
    module declaration
    spheres 101, 301
    indicators {
        cheap "Низька ціна": item.customs_value / item.net_mass < 10
        cn "Походження CN": item.origin in ("CN")
    }
    degree = 60 * cheap + 40 * cn
    message "Перевірте {item.hs_code}"
    controls {
        102 "Documentary check" mandatory from 40
        201 "Physical inspection" mandatory when cheap from 60
    }
}
""",
    "evil.rp": """
profile "<script>alert(1)</script> nothing selected" {
    indicators { never: item.origin == "ZZ" }
    degree = 100 * never
    controls { 102 "Documentary check" mandatory from 50 }
}
""",
}


def _fill(engine: sa.Engine) -> Any:
    decls = [
        (1, "D1", D(2025, 1, 10), "A"),
        (2, "D2", D(2025, 1, 20), "A"),
        (3, "D3", D(2025, 2, 5), "B"),
        (4, "D4", D(2025, 2, 6), "B"),
        (5, "D5", D(2025, 3, 7), "B"),  # no goods items
    ]
    items = [
        (1, 1, "CN", 50.0, 10.0),  # 100
        (2, 1, "DE", 50.0, 10.0),  # 60
        (3, 1, "CN", 50.0, None),  # 40
        (4, 1, "DE", 200.0, 10.0),  # 0
    ]
    controls = [
        (1, 1, "201", False, True, 1000.0),
        (2, 1, "102", False, False, None),
        (3, 2, "102", False, True, 200.0),
        (4, 4, "201", True, True, 300.0),
    ]
    return write_store(engine, decls, items, controls, D(2025, 2, 28))


def _checked() -> CheckResult:
    checked = check_sources(PROFILES)
    assert checked.ok, checked.render()
    return checked


def test_real_run_on_a_small_store() -> None:
    engine = sa.create_engine("sqlite://")
    source = _fill(engine)
    checked = _checked()
    options = BacktestOptions(D(2025, 1, 1), D(2025, 4, 30), by=("office",))
    with engine.connect() as conn:
        result = run_backtest(conn, source, planned_from(checked), options, record=True)
    assert result.run_id is not None
    text = render_html(result, checked)
    doc = parse(text)
    assert_offline(text, doc)
    assert_summary_matches(doc, result)
    assert f"#{result.run_id}" in doc.find("table", id="run").text()
    excise = result.profile("7G/07/2012/00048-05")
    n = result.profiles.index(excise)
    sec = section(doc, n)
    # the passport summary from the renderer: number, indicators, controls, spheres
    passport = sec.find("div", **{"class": "passport"}).text()
    for shown in ("7G/07/2012/00048-05", "Низька ціна", "Documentary check", "101 — Import"):
        assert shown in passport
    # a chart per metric, a point per month of the period (April has no declaration)
    sel, hit = charts(sec)
    titles = [pt.find("title").text() for pt in points(sel)]
    assert [t[:7] for t in titles] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert [month for month, _ in excise.series] == ["2025-01", "2025-02", "2025-03"]
    for title, (month, m) in zip(titles, excise.series, strict=False):
        assert title.startswith(f"{month}: selectivity {cell('selectivity', m.selectivity)} %")
    assert titles[3] == "2025-04: selectivity — (no declarations)"
    hits = [pt.find("title").text() for pt in points(hit)]
    for title, (month, m) in zip(hits, excise.series, strict=False):
        assert title.startswith(f"{month}: hit rate {cell('hit_rate', m.hit_rate)} %")
    # the profile that selects nothing: escaped name, dashes for its undefined ratios
    evil = next(p for p in result.profiles if p.total.selected == 0)
    assert "&lt;script&gt;" in text and doc.find_all("script") == []
    assert summary_rows(doc)[evil.key][SUMMARY.index("hit_rate") + 2] == "—"


def test_cli_writes_the_report(tmp_path: Path) -> None:
    from riskengine.cli import cli

    db = tmp_path / "store.db"
    _fill(sa.create_engine(f"sqlite:///{db}"))
    for name, text in PROFILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    out = tmp_path / "report.html"
    args = ["backtest", str(tmp_path / "excise.rp"), "--db", f"sqlite:///{db}"]
    args += ["--from", "2025-01-01", "--to", "2025-02-28", "--html", str(out), "--no-record"]
    run = CliRunner().invoke(cli, args)
    assert run.exit_code == 0, run.output
    text = out.read_text(encoding="utf-8")
    doc = parse(text)
    assert_offline(text, doc)
    assert "Ухилення від сплати акцизного податку" in summary_rows(doc)["7G/07/2012/00048-05"][1]


def test_write_html_reports_an_unwritable_path(tmp_path: Path) -> None:
    result = hand_built()
    path = tmp_path / "ok.html"
    write_html(result, None, path)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(BacktestError, match="cannot write the report"):
        write_html(result, None, tmp_path / "missing" / "report.html")
