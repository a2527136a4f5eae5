"""Running profile test cases against an engine, comparing expectations, measuring coverage."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from riskengine.declaration import DeclarationError, normalise_declaration
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator import (
    CompiledProfile,
    Engine,
    FiredProfile,
    HistoryValue,
    IndicatorState,
    ProfileExplanation,
)
from riskengine.evaluator.compiled import merge_controls
from riskengine.evaluator.explain import FillInfo
from riskengine.evaluator.history import history_block
from riskengine.evaluator.values import format_value
from riskengine.model import ControlKind
from riskengine.profiletest.format import TestCase, TestFile

__all__ = [
    "CaseResult",
    "CoveragePoint",
    "Diff",
    "FixedHistoryProvider",
    "ProfileCoverage",
    "RunResult",
    "Status",
    "coverage_points",
    "run_case",
    "run_tests",
]


class Status(enum.Enum):
    """The outcome of one case: PASS, FAIL (an expectation differs) or ERROR (cannot run)."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Diff:
    """One expectation that did not hold: the field, the expected and the actual value (text)."""

    field: str
    expected: str
    actual: str


@attrs.frozen
class CaseResult:
    """One case run: status, the profile key it tested, the differences or the error."""

    case: TestCase
    status: Status
    profile: str | None
    diffs: tuple[Diff, ...] = ()
    error: str | None = None
    explanation: ProfileExplanation | None = None


@attrs.frozen
class CoveragePoint:
    """An indicator or a control of a profile and whether the cases saw it true and false."""

    kind: str  # "indicator" | "control"
    name: str
    true_seen: bool
    false_seen: bool


@attrs.frozen
class ProfileCoverage:
    """Coverage of one profile: each point seen true / false, and the share covered."""

    key: str
    name: str
    cases: int
    points: tuple[CoveragePoint, ...]

    @property
    def covered(self) -> int:
        return sum(p.true_seen + p.false_seen for p in self.points)

    @property
    def total(self) -> int:
        return 2 * len(self.points)

    @property
    def percent(self) -> float:
        return 100.0 if not self.total else 100.0 * self.covered / self.total


@attrs.frozen
class RunResult:
    """All cases run and the coverage of every loaded profile (untested ones count 0 %)."""

    results: tuple[CaseResult, ...]
    coverage: tuple[ProfileCoverage, ...]

    @property
    def passed(self) -> int:
        return sum(r.status is Status.PASS for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def covered(self) -> int:
        return sum(c.covered for c in self.coverage)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.coverage)

    @property
    def percent(self) -> float:
        return 100.0 if not self.total else 100.0 * self.covered / self.total


class FixedHistoryProvider:
    """History with the same values for every subject, capped at the profile's maxima."""

    def __init__(self, negative: float, positive: float) -> None:
        self.negative = negative
        self.positive = positive

    def history(self, profile: Any, subject: tuple[Any, ...], as_of: dt.date) -> HistoryValue:
        block = history_block(profile)
        if block is None:
            return HistoryValue()
        neg = min(self.negative, float(block.negative.max)) if block.negative else 0.0
        pos = min(self.positive, float(block.positive.max)) if block.positive else 0.0
        return HistoryValue(neg, pos)


# ------------------------------------------------------------------------------ coverage points


def _control_label(code: str, fill: FillInfo | None) -> str:
    if fill is None:
        return code
    return f"{code} (fill {fill.office}, order {fill.order})"


def _fill_info(fill: Any) -> FillInfo:
    return FillInfo(
        fill.office,
        fill.order.number if fill.order else None,
        fill.valid.start if fill.valid else None,
        fill.valid.end if fill.valid else None,
    )


def coverage_points(cp: CompiledProfile) -> list[tuple[str, str]]:
    """The points to cover for a profile: each indicator, and each control of the profile and of
    each regional fill that has its own controls (``103 (fill UA100110, order 412)``)."""
    points = [("indicator", ind.name) for ind in cp.profile.indicators]
    own = not cp.regional or not cp.fills or any(not f.controls for f in cp.fills)
    if own:
        points += [("control", c.code) for c in cp.profile.controls]
    for fill in cp.fills:
        if fill.controls:
            info = _fill_info(fill)
            points += [("control", _control_label(c.code, info)) for c in fill.controls]
    return points


def _seen(why: ProfileExplanation, cp: CompiledProfile) -> Iterable[tuple[str, str, bool]]:
    fill = why.fill
    if fill is not None:
        own = [f for f in cp.fills if _fill_info(f) == fill]
        if not (own and own[0].controls):
            fill = None
    for item in why.items:
        for ind in item.indicators:
            yield "indicator", ind.name, ind.state is IndicatorState.TRUE
        for ctl in item.controls:
            yield "control", _control_label(ctl.code, fill), ctl.applied


# ------------------------------------------------------------------------------ running


def _matches(cp: CompiledProfile, wanted: str) -> bool:
    return wanted in (cp.key, cp.number, cp.name, cp.base)


def _targets(engine: Engine, case: TestCase, stem: str) -> list[CompiledProfile]:
    profiles = list(engine.profiles)
    if case.profile is not None:
        found = [cp for cp in profiles if _matches(cp, case.profile)]
        if not found:
            raise RiskEngineError(f"no profile {case.profile!r} among the loaded profiles")
        return found
    from pathlib import PurePath

    found = [cp for cp in profiles if PurePath(cp.file).name.removesuffix(".rp") == stem]
    if len({cp.base or cp.key for cp in found}) > 1:
        keys = ", ".join(cp.key for cp in found)
        raise RiskEngineError(
            f"{stem}.rp holds several profiles ({keys}); give the case a 'profile'"
        )
    if not found:
        raise RiskEngineError(
            f"no profile file {stem}.rp among the loaded profiles; give the case a 'profile'"
        )
    return found


def _kinds(controls: Mapping[str, ControlKind | None]) -> str:
    if not controls:
        return "none"
    return ", ".join(
        code if kind is None else f"{code} ({kind.value})"
        for code, kind in sorted(controls.items())
    )


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def run_case(
    engine: Engine, case: TestCase, stem: str
) -> tuple[CaseResult, CompiledProfile | None]:
    """Run one case; returns its result and the profile it tested (``None`` on an error)."""
    try:
        targets = _targets(engine, case, stem)
        decl = normalise_declaration(case.declaration, engine.profiles.catalogue)
        as_of = case.as_of or decl.header.get("date")
        if not isinstance(as_of, dt.date):
            raise RiskEngineError("no as_of and no declaration date to score on")
        history = FixedHistoryProvider(*case.history) if case.history is not None else None
        result = engine.score(decl, as_of, explain=True, history=history)
    except DeclarationError as exc:
        where = f"item {exc.item}, {exc.field}" if exc.item is not None else exc.field
        return CaseResult(
            case, Status.ERROR, None, error=f"declaration: {where}: {exc.reason}"
        ), None
    except RiskEngineError as exc:
        return CaseResult(case, Status.ERROR, None, error=str(exc)), None
    keys = {cp.key: cp for cp in targets}
    why = next((e for e in result.explanations if e.key in keys), None)
    fired: FiredProfile | None = next((f for f in result.fired if f.key in keys), None)
    cp = keys[why.key] if why is not None else targets[0]
    applies = why is not None and why.applies
    reason = f"not in force on {as_of.isoformat()}" if why is None else why.reason
    degree = 0.0
    if fired is not None:
        degree = fired.degree
    elif why is not None and why.items:
        degree = max(i.degree for i in why.items)
    controls = {c.code: c.kind for c in fired.controls} if fired else {}
    diffs: list[Diff] = []

    def check(field: str, expected: Any, actual: Any, ok: bool | None = None) -> None:
        if expected is None:
            return
        if not (expected == actual if ok is None else ok):
            diffs.append(Diff(field, _text(expected), _text(actual)))

    if case.applies is not None and case.applies != applies:
        diffs.append(Diff("applies", _text(case.applies), f"{_text(applies)} ({reason})"))
    check("fires", case.fires, fired is not None)
    if case.degree is not None:
        check("degree", case.degree, degree, abs(case.degree - degree) < 1e-9)
    if case.controls is not None:
        ok = set(case.controls) == set(controls) and all(
            kind is None or controls[code] is kind for code, kind in case.controls.items()
        )
        if not ok:
            shown = {
                c: (k if case.controls.get(c, k) is not None else None) for c, k in controls.items()
            }
            diffs.append(Diff("controls", _kinds(case.controls), _kinds(shown)))
    message = fired.message if fired else None
    if case.message is not None and case.message != message:
        actual = _text(message)
        if message is not None:
            at = next(
                (i for i, (a, b) in enumerate(zip(case.message, message, strict=False)) if a != b),
                min(len(case.message), len(message)),
            )
            actual += f" (first difference at character {at + 1})"
        diffs.append(Diff("message", _text(case.message), actual))
    if case.message_contains is not None:
        check(
            "message_contains", case.message_contains, message,
            message is not None and case.message_contains in message,
        )  # fmt: skip
    check("items", case.items, fired.items if fired else ())
    if case.lane is not None:
        lane = engine.lanes.lane(merge_controls(list(fired.controls)) if fired else ())
        check("lane", case.lane, str(lane))
    status = Status.FAIL if diffs else Status.PASS
    return CaseResult(case, status, cp.key, tuple(diffs), None, why), cp


def run_tests(engine: Engine, files: Sequence[TestFile]) -> RunResult:
    """Run every case of ``files`` and compute the coverage of every loaded profile."""
    results: list[CaseResult] = []
    seen: dict[str, dict[tuple[str, str], set[bool]]] = {}
    counts: dict[str, int] = {}
    by_key = {cp.key: cp for cp in engine.profiles}
    for tf in files:
        for case in tf.cases:
            res, cp = run_case(engine, case, tf.stem)
            results.append(res)
            if cp is None or res.explanation is None:
                continue
            counts[cp.key] = counts.get(cp.key, 0) + 1
            marks = seen.setdefault(cp.key, {})
            for kind, name, value in _seen(res.explanation, by_key[cp.key]):
                marks.setdefault((kind, name), set()).add(value)
    coverage = []
    for cp in engine.profiles:
        marks = seen.get(cp.key, {})
        points = tuple(
            CoveragePoint(kind, name, True in marks.get((kind, name), ()),
                          False in marks.get((kind, name), ()))
            for kind, name in coverage_points(cp)
        )  # fmt: skip
        coverage.append(ProfileCoverage(cp.key, cp.name, counts.get(cp.key, 0), points))
    return RunResult(tuple(results), tuple(coverage))
