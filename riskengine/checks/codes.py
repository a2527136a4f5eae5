"""The registry of check codes: each stable code with its severity and a one-line title."""

from __future__ import annotations

from types import MappingProxyType

import attrs

from riskengine.diagnostics import Severity

E = Severity.ERROR
W = Severity.WARNING


@attrs.frozen
class CodeInfo:
    """What a diagnostic code means: its severity (fixed per code) and a short title."""

    code: str
    severity: Severity
    title: str


_TABLE: list[tuple[str, Severity, str]] = [
    # RE0xx: reading and parsing (reported by riskengine.syntax; RE006 also by check_paths)
    ("RE001", E, "unexpected character"),
    ("RE002", E, "unexpected token"),
    ("RE003", E, "unexpected end of file"),
    ("RE004", E, "unclosed string"),
    ("RE005", E, "file is not UTF-8"),
    ("RE006", E, "file cannot be read"),
    ("RE007", W, "no profile or fill in the file (reported by `riskengine check`)"),
    ("RE010", E, "statement given twice"),
    ("RE011", E, "invalid calendar date"),
    ("RE012", E, "bad message placeholder"),
    ("RE013", E, "unknown escape in a string"),
    ("RE014", E, "not a whole number"),
    ("RE015", E, "bad regular expression"),
    ("RE016", E, "regular expression that cannot be matched in linear time"),
    # RE1xx: passport fields
    ("RE101", E, "criteria group of the number is not 2 letters or digits"),
    ("RE102", E, "unit part of the number is not 2 digits"),
    ("RE103", E, "unit of the number is not in appendix 4"),
    ("RE104", E, "year part of the number is not 4 digits"),
    ("RE105", E, "year of the number differs from the approval year"),
    ("RE106", E, "sequence part of the number is not 5 digits"),
    ("RE107", E, "edition part of the number is not 01..99"),
    ("RE108", W, "a later edition without `edition approved`"),
    ("RE110", E, "empty profile name"),
    ("RE111", E, "profile name longer than 250 characters"),
    ("RE120", E, "edition approved before the profile was approved"),
    ("RE121", E, "in-force period ends before it starts"),
    ("RE122", E, "edition in force before the profile is in force"),
    ("RE123", E, "edition in force after the profile's in-force end"),
    ("RE124", E, "review date before the profile is in force"),
    ("RE125", W, "review date before the approval date"),
    ("RE126", W, "in force before it was approved"),
    ("RE127", W, "edition in force before the edition was approved"),
    ("RE130", E, "an approved profile lacks a required passport field"),
    ("RE131", W, "a draft that cannot be evaluated yet"),
    ("RE140", E, "unknown module"),
    ("RE141", W, "`module other` does not say which module"),
    ("RE142", E, "unknown risk sphere"),
    ("RE143", E, "risk sphere listed twice"),
    # RE2xx: names and types
    ("RE201", E, "unknown declaration or item field"),
    ("RE202", E, "unknown regional parameter"),
    ("RE203", E, "`region.` in a profile that is not regional"),
    ("RE204", W, "regional profile without a `regional { }` block"),
    ("RE205", E, "regional parameters in a profile that is not regional"),
    ("RE206", E, "unknown parameter type"),
    ("RE207", E, "not a list where a list is expected"),
    ("RE208", E, "a list used as a single value"),
    ("RE209", W, "regional parameter never used"),
    ("RE210", E, "unknown indicator"),
    ("RE211", E, "unknown list"),
    ("RE212", E, "name defined twice"),
    ("RE213", E, "indicator named like a list"),
    ("RE214", E, "indicators that depend on each other in a cycle"),
    ("RE220", E, "comparison of values of different types"),
    ("RE221", E, "arithmetic on a value that is not a number"),
    ("RE222", E, "`starts with` or `matches` on a value that is not text"),
    ("RE223", E, "list values of another type than the tested value"),
    ("RE224", E, "list mixing values of different types"),
    ("RE225", E, "`between` bound of another type"),
    ("RE226", E, "a condition that is not true/false"),
    ("RE227", E, "a degree that is not a number"),
    ("RE228", E, "unknown function"),
    ("RE229", E, "wrong number of arguments"),
    ("RE230", E, "function argument that is not a number"),
    ("RE231", E, "`if` branches of different types"),
    ("RE240", E, "unknown message placeholder"),
    ("RE241", W, "message shows a history value the profile does not compute"),
    # RE3xx: degree, controls, history
    ("RE301", E, "threshold outside 0..100"),
    ("RE302", W, "control that can never apply"),
    ("RE303", W, "profile that can never fire"),
    ("RE304", E, "history value without its history block"),
    ("RE305", E, "control code listed twice"),
    ("RE306", W, "indicator never used"),
    ("RE307", W, "control that applies to every goods item"),
    ("RE310", E, "unknown non-completion reason"),
    ("RE311", E, "reason listed twice"),
    ("RE312", E, "negative significance coefficient"),
    ("RE313", E, "negative history maximum"),
    ("RE314", E, "negative positive-history step"),
    ("RE315", E, "negative per-case weight"),
    ("RE316", E, "history window shorter than one day"),
    ("RE317", E, "history prefix shorter than one character"),
    ("RE318", W, "history block with neither negative nor positive history"),
    ("RE319", E, "history subject that is not a declaration or item field"),
    ("RE320", W, "negative history without reasons"),
    ("RE321", W, "history computed but never used"),
    # RE4xx: regional fills
    ("RE401", E, "fill without `office`"),
    ("RE402", E, "fill without `order`"),
    ("RE403", E, "fill without `valid`"),
    ("RE404", E, "fill valid range ends before it starts"),
    ("RE405", E, "fill valid for more than 3 months"),
    ("RE406", E, "fill lacks a parameter value"),
    ("RE407", E, "fill value for an unknown parameter"),
    ("RE408", E, "fill value of the wrong type"),
    ("RE409", E, "fill for a profile that is not loaded"),
    ("RE410", E, "fill for a profile that is not regional"),
    ("RE411", E, "overlapping fills for the same profile and office"),
    ("RE412", E, "fill value given twice"),
    ("RE413", W, "fill valid before its order was signed"),
    ("RE414", W, "fill valid only outside the profile's in-force period"),
    ("RE415", W, "regional profile without a valid fill on some days"),
    # RE5xx: across files
    ("RE501", E, "profile number used twice"),
    ("RE502", E, "profile name used by another profile"),
    # RE6xx: limits every backend needs (riskengine.semantics.limits; RE601, RE602 and RE605
    # are also reported by the parser, before anything that recurses reads the model)
    ("RE601", E, "expression nested too deeply"),
    ("RE602", E, "number with too many digits"),
    ("RE603", E, "profile expressions too large"),
    ("RE604", E, "history weight out of range"),
    ("RE605", E, "history window or prefix too long"),
]

#: Every code by name. A diagnostic's severity always comes from here.
CODES: MappingProxyType[str, CodeInfo] = MappingProxyType(
    {code: CodeInfo(code, severity, title) for code, severity, title in _TABLE}
)
