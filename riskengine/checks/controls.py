"""Degree, control and history checks (RE3xx): thresholds, reachable degrees, history blocks."""

from __future__ import annotations

from decimal import Decimal

from riskengine import classifiers
from riskengine import model as m
from riskengine.checks.context import (
    Reporter,
    did_you_mean,
    fmt_number,
    head,
    line_head,
    tail,
    token_span,
    where,
)
from riskengine.checks.intervals import Interval
from riskengine.diagnostics import Span

_HUNDRED = Decimal(100)


def check_controls(
    controls: tuple[m.Control, ...],
    degree: Interval | None,
    report: Reporter,
    degree_span: Span | None,
    owner: str,
) -> None:
    """Thresholds within 0..100 (RE301), duplicate codes (RE305), controls that can never apply
    (RE302) or always apply (RE307), and a profile (or fill) that can never fire (RE303).
    ``degree`` is the degree's interval before clamping (None: the profile has no degree)."""
    seen: dict[str, m.Control] = {}
    reachable = degree.clamp() if degree is not None else None
    never = 0
    for ctl in controls:
        first = seen.get(ctl.code)
        if first is not None:
            report(
                "RE305",
                f"control {ctl.code} is listed twice (first at {where(first.span, ctl.span)})",
                head(ctl.span, len(ctl.code)),
                "list each procedure once; give the strongest kind and the lowest threshold",
            )
        else:
            seen[ctl.code] = ctl
        if ctl.threshold < 0 or ctl.threshold > _HUNDRED:
            never += ctl.threshold > _HUNDRED
            report(
                "RE301",
                f"the threshold {ctl.threshold} is outside 0..100",
                _threshold_span(ctl),
                "the degree is clamped to 0..100; a threshold is a degree in that range",
            )
            continue
        if reachable is None:
            continue
        t = float(ctl.threshold)
        if t > reachable.hi:
            never += 1
            report(
                "RE302",
                f"control {ctl.code} can never apply: the degree is at most "
                f"{fmt_number(reachable.hi)}, below the threshold {ctl.threshold}",
                _threshold_span(ctl),
                f"lower the threshold to at most {fmt_number(reachable.hi)}, or raise the "
                "degree's weights",
            )
        elif t <= reachable.lo and ctl.condition is None:
            report(
                "RE307",
                f"control {ctl.code} applies to every goods item: the degree is always at least "
                f"{fmt_number(reachable.lo)}",
                _threshold_span(ctl),
                "raise the threshold, or add a condition with `when`",
            )
    if controls and never == len(controls) and reachable is not None:
        report(
            "RE303",
            f"{owner} can never fire: no control's threshold is reachable "
            f"(the degree is at most {fmt_number(reachable.hi)})",
            degree_span if degree_span is not None else head(controls[0].span, 1),
        )


def _threshold_span(ctl: m.Control) -> Span:
    return tail(ctl.span, len(str(ctl.threshold)))


def check_history(
    p: m.Profile,
    used: set[m.HistoryKind],
    report: Reporter,
    reasons: classifiers.Classifier | None = None,
) -> None:
    """Reason codes (RE310, RE311) of ``reasons`` (appendix 3 and the service's own reasons of
    the catalogue in force; appendix 3 alone when ``None``), non-negative numbers (RE312–RE315),
    the window (RE316), empty blocks (RE318, RE320), history that nothing uses (RE321)."""
    hist = p.history
    if hist is None:
        return
    if hist.window_days < 1:
        report(
            "RE316",
            f"a history window of {hist.window_days} days holds no clearance",
            report.find(hist.span, r"\bover\s+([0-9.]+)\s+days\b"),
            "use at least 1 day, e.g. `over 365 days`",
        )
    if hist.negative is None and hist.positive is None:
        report(
            "RE318",
            "the history block has neither `negative` nor `positive` history",
            line_head(report, hist.span),
            "add `negative max N { REASON: COEFFICIENT }` or "
            "`positive max N per clean control STEP`, or remove the block",
        )
    neg = hist.negative
    if neg is not None:
        if neg.max < 0:
            report(
                "RE313",
                f"the negative history maximum {neg.max} is below 0",
                token_span(report, neg.span, str(neg.max)),
            )
        if neg.per_case < 0:
            report(
                "RE315",
                f"the weight per case {neg.per_case} is below 0",
                report.find(neg.span, r"\bcase\s+(\S+)"),
            )
        if not neg.reasons:
            report(
                "RE320",
                "negative history lists no non-completion reasons: it is always 0",
                line_head(report, neg.span),
                "list reasons of appendix 3 with their coefficients, e.g. `{ 0201: 1.0 }`",
            )
        table = reasons or classifiers.reasons()
        extended = len(table) > len(classifiers.reasons())
        seen: dict[str, m.ReasonCoefficient] = {}
        for r in neg.reasons:
            if r.code not in table:
                report(
                    "RE310",
                    f"`{r.code}` is not a non-completion reason of appendix 3"
                    + (" or of the catalogue's [[reason]] tables" if extended else ""),
                    head(r.span, len(r.code)),
                    did_you_mean(table.suggest(r.code))
                    or "reasons are four digits: group and number, e.g. 0201",
                )
            elif r.code in seen:
                report(
                    "RE311",
                    f"reason {r.code} is listed twice "
                    f"(first at {where(seen[r.code].span, r.span)})",
                    head(r.span, len(r.code)),
                    "give each reason one coefficient",
                )
            else:
                seen[r.code] = r
            if r.coefficient < 0:
                report(
                    "RE312",
                    f"the coefficient {r.coefficient} of reason {r.code} is below 0",
                    tail(r.span, len(str(r.coefficient))),
                    "coefficients weigh violations: 0 or more",
                )
    pos = hist.positive
    if pos is not None:
        if pos.max < 0:
            report(
                "RE313",
                f"the positive history maximum {pos.max} is below 0",
                token_span(report, pos.span, str(pos.max)),
            )
        if pos.step < 0:
            report(
                "RE314",
                f"the step per clean control {pos.step} is below 0",
                tail(pos.span, len(str(pos.step))),
            )
    for kind, block in ((m.HistoryKind.NEGATIVE, neg), (m.HistoryKind.POSITIVE, pos)):
        if block is not None and kind not in used and p.degree is not None:
            word = kind.value.split("_")[0]
            report(
                "RE321",
                f"{word} history is computed but never used: nothing mentions `{kind.value}`",
                line_head(report, block.span),
                f"add it to the degree, e.g. `degree = … {'+' if word == 'negative' else '-'} "
                f"{kind.value}`",
            )
