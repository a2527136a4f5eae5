"""The evidence a submission needs: the text checks clean, its unit tests pass, a backtest of this
very text is recorded in the store. Each refusal says which and why."""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa

from riskengine import model as m
from riskengine.backtest.run import profile_sha256
from riskengine.checks import CheckResult, check_sources
from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator.engine import Engine
from riskengine.profiletest import Diff, Status, TestFileError, parse_test_text, run_tests
from riskengine.store.schema import TABLES

__all__ = ["Evidence", "RegistryError", "checked_text", "gather_evidence"]


class RegistryError(RiskEngineError):
    """A registry action refused: the message says why and what to do."""


@attrs.frozen
class Evidence:
    """What a submission brings: the parsed file, its profile, the check summary, the unit-test
    figures, the backtest run and the canonical hash the backtest recorded."""

    source: m.SourceFile
    profile: m.Profile
    check_summary: str
    tests_passed: int
    tests_failed: int
    coverage: float
    backtest_run: int
    profile_sha256: str


def checked_text(text: str, file: str, extra: dict[str, str] | None = None) -> CheckResult:
    """Check ``text`` (with ``extra`` files beside it); refuse it with every error rendered."""
    sources = {file: text, **(extra or {})}
    result = check_sources(sources)
    if not result.ok:
        raise RegistryError(f"{file} does not check clean:\n{result.render()}")
    return result


def _one_profile(result: CheckResult, file: str) -> tuple[m.SourceFile, m.Profile]:
    source = next(sf for sf in result.files if sf.path == file)
    if len(source.profiles) != 1 or source.fills:
        raise RegistryError(
            f"{file} holds {len(source.profiles)} profiles and {len(source.fills)} fills: "
            "a submission is one profile (with its named lists), fills are entered with `fill`"
        )
    return source, source.profiles[0]


def _diffs(diffs: tuple[Diff, ...]) -> str:
    return "; ".join(f"{d.field} expected {d.expected}, got {d.actual}" for d in diffs)


def _tests(text: str, file: str, tests: str) -> tuple[int, int, float]:
    stem = file.rsplit("/", 1)[-1].removesuffix(".rp")
    try:
        test_file = parse_test_text(tests, f"{stem}.test.toml")
    except TestFileError as exc:
        raise RegistryError(f"the unit tests cannot be read: {exc}") from None
    engine = Engine.load(sources={file: text}, allow_drafts=True)  # the draft under review
    run = run_tests(engine, [test_file])
    bad = [r for r in run.results if r.status is not Status.PASS]
    if bad:
        lines = [
            f"  {r.status} {r.case.name}: "
            + (
                r.error
                or "; ".join(f"{d.field} expected {d.expected}, got {d.actual}" for d in r.diffs)
            )
            for r in bad
        ]
        raise RegistryError(
            f"{len(bad)} of {len(run.results)} unit tests do not pass:\n" + "\n".join(lines)
        )
    return run.passed, run.failed, run.percent


def _backtest(connection: sa.Connection, run_pk: int | None, digest: str, key: str) -> int:
    if run_pk is None:
        raise RegistryError(
            f"no backtest run given: back-test {key} (`riskengine backtest`) and submit with the "
            "run's number"
        )
    runs = TABLES.backtest_runs
    row = connection.execute(
        sa.select(runs.c.finished_at, runs.c.profile_hashes).where(runs.c.pk == run_pk)
    ).first()
    if row is None:
        raise RegistryError(f"the store records no backtest run {run_pk}")
    if row.finished_at is None:
        raise RegistryError(f"backtest run {run_pk} did not finish")
    hashes: Any = row.profile_hashes or {}
    if digest not in (hashes.values() if isinstance(hashes, dict) else ()):
        raise RegistryError(
            f"backtest run {run_pk} did not test this text of {key} (no profile in it has the "
            f"hash {digest[:12]}…): back-test the text you submit"
        )
    return run_pk


def gather_evidence(
    connection: sa.Connection, text: str, file: str, tests: str, backtest_run: int | None
) -> Evidence:
    """Check, test and find the backtest of a submitted text; raise :class:`RegistryError` on
    the first missing piece, in that order."""
    result = checked_text(text, file)
    source, profile = _one_profile(result, file)
    passed, failed, coverage = _tests(text, file, tests)
    digest = profile_sha256(profile)
    run = _backtest(connection, backtest_run, digest, profile.key)
    return Evidence(
        source=source,
        profile=profile,
        check_summary=result.summary(),
        tests_passed=passed,
        tests_failed=failed,
        coverage=coverage,
        backtest_run=run,
        profile_sha256=digest,
    )
