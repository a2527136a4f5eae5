"""Scoring a request's declarations with one engine: the answers, the problems, the decision
log. Runs in a worker thread (history may read the store), never on the event loop."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import sqlalchemy as sa

from riskengine.decisionlog import DecisionBatch, DecisionLog, RecordError
from riskengine.declaration import DeclarationError, JsonInputError
from riskengine.evaluator import EvaluationError, HistoryProvider, ScoreResult
from riskengine.service.bundles import Loaded
from riskengine.service.metrics import Metrics
from riskengine.service.problems import Problem
from riskengine.store.engine import StoreError

__all__ = ["Scorer", "batch_rows"]

#: How long a request waits for its decisions to be acknowledged before it is refused (503).
ACK_TIMEOUT = 30.0
_RETRY = {"Retry-After": "1"}
_NO_DATE = "no as-of date: give the declaration a date, or the request ?as_of=YYYY-MM-DD"
#: Every decision is recorded, keyed by declaration id and bundle revision.
_NO_ID = "a declaration needs an id: every decision is recorded in the decision log by its id"


def _store_failure(exc: BaseException) -> BaseException | None:
    """The store error behind ``exc`` (a history lookup that failed), if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa.exc.SQLAlchemyError | StoreError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def batch_rows(body: bytes, ndjson: bool) -> Iterator[tuple[int, Any]]:
    """The rows of a batch body with their 1-based numbers: for JSON Lines each non-blank line's
    bytes (numbered by line), for a JSON array each element (decoded). A body that is not an
    array is a problem; so is an empty batch."""
    if ndjson:
        found = False
        for number, line in enumerate(body.split(b"\n"), 1):
            if line.strip():
                found = True
                yield number, line
        if not found:
            raise Problem("empty-batch", "the body holds no JSON line")
        return
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            "malformed-json", f"not JSON: {exc.msg}", line=exc.lineno, column=exc.colno
        ) from None
    if not isinstance(data, list):
        raise Problem(
            "not-a-declaration",
            "a batch is a JSON array of declarations (or JSON Lines with Content-Type "
            "application/x-ndjson)",
        )
    if not data:
        raise Problem("empty-batch", "the array holds no declaration")
    yield from enumerate(data, 1)


def _rejected(row: int, ident: Any, field: str | None, item: int | None, reason: str) -> Any:
    if not isinstance(ident, str | int) or isinstance(ident, bool):
        ident = None
    return {
        "rejected": True,
        "row": row,
        "id": None if ident is None else str(ident),
        "field": field,
        "item": item,
        "reason": reason,
    }


class Scorer:
    """Scores with the engine of one :class:`Loaded` bundle (taken once per request), the
    service's history provider, and records every decision in the log."""

    def __init__(
        self, log: DecisionLog, metrics: Metrics, ack: bool, history: HistoryProvider
    ) -> None:
        self.log = log
        self.metrics = metrics
        self.ack = ack
        self.history = history

    def _score(self, loaded: Loaded, decl: Any, as_of: dt.date | None) -> ScoreResult:
        try:
            return loaded.engine.score(decl, as_of, history=self.history)
        except DeclarationError as exc:  # no date: said in the service's words
            if exc.field == "declaration.date" and as_of is None:
                raise DeclarationError(exc.field, None, _NO_DATE) from None
            raise
        except EvaluationError as exc:
            failure = _store_failure(exc)
            if failure is not None:
                raise Problem(
                    "store-unavailable",
                    f"history could not be read from the store: {_first_line(failure)}",
                    headers=_RETRY,
                ) from None
            raise

    def _record(self, batch: DecisionBatch) -> None:
        log = self.log
        m = self.metrics
        try:
            log.record_batch(batch)
        except RecordError as exc:  # closed: the service is shutting down
            raise Problem("shutting-down", str(exc), headers=_RETRY) from None
        if self.ack and batch.entries and not log.flush(ACK_TIMEOUT):
            raise Problem(
                "decision-log-full",
                "the decisions could not be acknowledged (neither the store nor the spool took "
                f"them within {ACK_TIMEOUT:g} s): {log.stats().last_error}",
                headers=_RETRY,
            )
        # counted per request, not per declaration: a label lookup costs about a microsecond
        lanes: collections.Counter[str] = collections.Counter()
        fired: collections.Counter[str] = collections.Counter()
        chosen = 0
        for entry in batch.entries:
            result = entry[0]
            lanes[result.lane.value] += 1
            for f in result.fired:
                fired[f.number or f.key] += 1
            chosen += result.random_selected is True
        for lane, n in lanes.items():
            m.scored.labels(lane).inc(n)
        for number, n in fired.items():
            m.fired.labels(number).inc(n)
        if chosen:
            m.random.inc(chosen)

    def one(self, loaded: Loaded, body: bytes, as_of: dt.date | None) -> bytes:
        """One declaration (JSON bytes): its result as JSON bytes, or a :class:`Problem`."""
        try:
            decl = loaded.engine.profiles.reader.read_json(body)
        except JsonInputError as exc:
            self.metrics.rejected.inc()
            raise Problem("malformed-json", exc.reason, line=exc.line, column=exc.column) from None
        except DeclarationError as exc:
            self.metrics.rejected.inc()
            if exc.field == "declaration" and exc.item is None:
                raise Problem("not-a-declaration", f"expected one declaration: {exc}") from None
            raise Problem(
                "invalid-declaration", str(exc), field=exc.field, item=exc.item, reason=exc.reason
            ) from None
        try:
            result = self._score(loaded, decl, as_of)
        except DeclarationError as exc:  # no date
            self.metrics.rejected.inc()
            raise Problem(
                "invalid-declaration", str(exc), field=exc.field, item=exc.item, reason=exc.reason
            ) from None
        except EvaluationError as exc:
            self.metrics.rejected.inc()
            raise Problem("evaluation-failed", str(exc), profile=exc.key) from None
        if result.declaration_id is None:
            self.metrics.rejected.inc()
            raise Problem(
                "invalid-declaration", f"id: {_NO_ID}", field="id", item=None, reason=_NO_ID
            )
        pending = self.log.batch()
        pending.add(result, decl)
        self._record(pending)
        return orjson.dumps(result.to_dict())

    def batch(self, loaded: Loaded, body: bytes, ndjson: bool, as_of: dt.date | None) -> bytes:
        """A batch: every row's result or rejected record, in order, under one revision."""
        reader = loaded.engine.profiles.reader
        out: list[Any] = []
        # each decision's record takes office, regime and date at once: the declarations are
        # not kept until the batch ends (that cost 6-10 µs a declaration in memory traffic)
        pending = self.log.batch()
        rejected = 0
        for row, raw in batch_rows(body, ndjson):
            ident: Any = raw.get("id") if isinstance(raw, dict) else None
            try:
                if ndjson:
                    decl = reader.read_json(raw)
                else:
                    decl = reader.read(raw)
                result = self._score(loaded, decl, as_of)
            except JsonInputError as exc:
                out.append(_rejected(row, None, None, None, exc.reason))
            except DeclarationError as exc:
                if ndjson and ident is None:
                    try:
                        found = orjson.loads(raw)
                        ident = found.get("id") if isinstance(found, dict) else None
                    except orjson.JSONDecodeError:
                        ident = None
                reason = exc.reason
                if exc.field == "declaration" and exc.item is None:
                    reason = f"not a declaration: {exc.reason}"
                out.append(_rejected(row, ident, exc.field, exc.item, reason))
            except EvaluationError as exc:
                out.append(_rejected(row, ident, None, None, str(exc)))
            else:
                if result.declaration_id is not None:
                    out.append(result.to_dict())
                    pending.add(result, decl)
                    continue
                out.append(_rejected(row, None, "id", None, _NO_ID))
            rejected += 1
        if rejected:
            self.metrics.rejected.inc(rejected)
        self._record(pending)
        return orjson.dumps(
            {
                "bundle_revision": loaded.revision,
                "scored": len(pending),
                "rejected": rejected,
                "results": out,
            }
        )
