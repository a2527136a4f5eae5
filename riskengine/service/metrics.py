"""The service's Prometheus metrics (``GET /metrics``).

With one worker process the metrics live in the app's own registry. With several
(``riskengine serve --workers N``) every worker writes its values to files in
``$PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set up by the command
before the workers start) and ``/metrics``, answered by any worker, sums them over all workers.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from riskengine.decisionlog import LogStats

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "Metrics"]

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The kinds of ``riskengine_decision_log_records_total``.
LOG_KINDS = (
    "written", "replayed", "spool_appends", "duplicates", "failures", "refused", "adopted",
)  # fmt: skip
#: Latency buckets in seconds: fine below 10 ms, where single declarations are answered.
_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip


class Metrics:
    """Every metric of one app. ``multiprocess``: the values go to ``$PROMETHEUS_MULTIPROC_DIR``
    and :meth:`exposition` sums the files of every worker."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "riskengine_http_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "riskengine_http_request_duration_seconds",
            "Time from the request's arrival to its answer, by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.scored = Counter(
            "riskengine_declarations_scored",
            "Declarations scored, by lane.",
            ["lane"],
            registry=r,
        )
        self.rejected = Counter(
            "riskengine_declarations_rejected",
            "Declarations refused (bad JSON, a bad value, a profile that failed on it).",
            registry=r,
        )
        self.fired = Counter(
            "riskengine_profiles_fired",
            "Profiles that fired, by profile number.",
            ["profile"],
            registry=r,
        )
        self.random = Counter(
            "riskengine_random_selected",
            "Declarations chosen for a random control.",
            registry=r,
        )
        self.reloads = Counter(
            "riskengine_bundle_reloads",
            "Bundles the service tried to swap in: loaded, or refused (signature, hashes or "
            "contents; the previous bundle kept serving).",
            ["outcome"],
            registry=r,
        )
        mode = {"multiprocess_mode": "max"}
        self.revision = Gauge(
            "riskengine_bundle_revision",
            "The revision of the bundle in use.",
            registry=r,
            **mode,  # type: ignore[arg-type]
        )
        live = {"multiprocess_mode": "livesum"}
        self.backlog = Gauge(
            "riskengine_decision_log_backlog",
            "Decisions not in the store yet (queued in memory + spooled).",
            registry=r,
            **live,  # type: ignore[arg-type]
        )
        self.spooled = Gauge(
            "riskengine_decision_log_spooled",
            "Decisions in the spool file, waiting for the store.",
            registry=r,
            **live,  # type: ignore[arg-type]
        )
        self.log_counts = Counter(
            "riskengine_decision_log_records",
            "Decision-log records by what happened to them: written (to the store, straight or "
            "replayed), replayed (from the spool), spool_appends, duplicates, failures (store "
            "writes that failed), refused, adopted (replayed from spool files no worker held).",
            ["kind"],
            registry=r,
        )
        for kind in LOG_KINDS:  # every series there from the start, at 0
            self.log_counts.labels(kind)
        self._counted: dict[str, int] = dict.fromkeys(LOG_KINDS, 0)
        self._counting = threading.Lock()
        self.store_up = Gauge(
            "riskengine_decision_log_store_up",
            "1 when the decision log's last store write worked (the minimum over workers).",
            registry=r,
            multiprocess_mode="min",
        )

        self.frozen = Gauge(
            "riskengine_heap_frozen_objects",
            "Objects the garbage collector does not walk (gc.freeze: the bundle loaded, the "
            "history preloaded; 0 with --no-freeze-heap).",
            registry=r,
            **live,  # type: ignore[arg-type]
        )

    def observe_log(self, stats: LogStats, adopted: int = 0) -> None:
        """The decision log's state into the gauges, and what its counters (and ``adopted``,
        the service's own) gained since the last call into the counter."""
        self.backlog.set(stats.backlog)
        self.spooled.set(stats.spooled)
        with self._counting:
            for kind in LOG_KINDS:
                now = adopted if kind == "adopted" else getattr(stats, kind)
                gained = now - self._counted[kind]
                if gained > 0:
                    self.log_counts.labels(kind).inc(gained)
                    self._counted[kind] = now
        self.store_up.set(1 if stats.store_up else 0)

    def exposition(self) -> bytes:
        """The metrics as Prometheus text (of every worker in multiprocess mode)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
