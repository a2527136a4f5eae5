"""Demo data: realistic, reproducible declarations with planted violations, outcomes and controls.

:mod:`~riskengine.demo.generate` makes the records (no database needed; the same seed gives the
same records); :mod:`~riskengine.demo.output` stores them or writes them as exports, whose ingest
mappings are in ``riskengine/demo/examples/``. ``riskengine demo`` and ``riskengine demo-data``
(:mod:`riskengine.cli.demo`) are the commands.
"""

from riskengine.demo.generate import (
    DEFAULT_END,
    DEFAULT_START,
    GOODS,
    OFFICES,
    PROFILE_KEYS,
    DemoRecord,
    generate,
)
from riskengine.demo.output import (
    EXPORT_COLUMNS,
    DemoSummary,
    export_csv,
    export_jsonl,
    export_outcomes_csv,
    export_rows,
    raw_declaration,
    write_demo,
)

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "EXPORT_COLUMNS",
    "GOODS",
    "OFFICES",
    "PROFILE_KEYS",
    "DemoRecord",
    "DemoSummary",
    "export_csv",
    "export_jsonl",
    "export_outcomes_csv",
    "export_rows",
    "generate",
    "raw_declaration",
    "write_demo",
]
