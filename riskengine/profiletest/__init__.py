"""Profile unit tests: ``*.test.toml`` cases run against the evaluator, with coverage."""

from riskengine.profiletest.format import (
    TEST_SUFFIX,
    TestCase,
    TestFile,
    TestFileError,
    find_test_files,
    parse_test_file,
    parse_test_text,
)
from riskengine.profiletest.runner import (
    CaseResult,
    CoveragePoint,
    Diff,
    FixedHistoryProvider,
    ProfileCoverage,
    RunResult,
    Status,
    coverage_points,
    run_case,
    run_tests,
)

__all__ = [
    "TEST_SUFFIX",
    "CaseResult",
    "CoveragePoint",
    "Diff",
    "FixedHistoryProvider",
    "ProfileCoverage",
    "RunResult",
    "Status",
    "TestCase",
    "TestFile",
    "TestFileError",
    "coverage_points",
    "find_test_files",
    "parse_test_file",
    "parse_test_text",
    "run_case",
    "run_tests",
]
