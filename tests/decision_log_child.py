"""A scoring process for tests/test_decision_log.py: scores and records demo declarations until
killed, printing ``ACK n`` each time the first n records are acknowledged (flush returned).

    python tests/decision_log_child.py URL SPOOL REVISION
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskengine.decisionlog import DecisionLog
from riskengine.demo.generate import generate
from riskengine.evaluator import Engine

ROOT = Path(__file__).resolve().parent.parent
#: Declarations scored at most (the parent kills the process long before).
COUNT = 20_000


def main() -> None:
    url, spool, revision = sys.argv[1:4]
    engine = Engine.load(ROOT / "profiles")
    log = DecisionLog(
        url, spool=spool, revision=revision, batch_size=50, flush_interval=0.01,
        retry_interval=3600,  # the store stays away for this process's life
    )  # fmt: skip
    print("READY", flush=True)
    for count, record in enumerate(generate(COUNT, seed=3), 1):
        declaration = record.declaration
        log.record(engine.score(declaration), declaration)
        if count % 100 == 0:
            assert log.flush(60)
            print(f"ACK {count}", flush=True)


if __name__ == "__main__":
    main()
