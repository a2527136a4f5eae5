"""The HTTP service: a Starlette app (chosen over FastAPI by measurement, docs/performance.md)
served by uvicorn. See docs/service.md.

Routes: ``POST /v1/score``, ``POST /v1/score/batch``, ``GET /v1/bundle``, ``GET /healthz``,
``GET /metrics``, ``GET /openapi.json``. Every answer that is not a result is an RFC 9457
problem document (:mod:`riskengine.service.problems`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import difflib
import gzip
import logging
import signal
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riskengine.decisionlog import DecisionLog, RecordError, SpoolError
from riskengine.evaluator import LaneConfig, RandomSelection
from riskengine.service.bundles import BundleHolder, Loaded
from riskengine.service.config import ServiceConfig
from riskengine.service.heap import HeapFreezer
from riskengine.service.metrics import CONTENT_TYPE_LATEST, Metrics
from riskengine.service.problems import Problem, problem_response
from riskengine.service.scoring import Scorer
from riskengine.store.history import StoreHistoryProvider

__all__ = ["ROUTES", "Service", "app_from_env", "create_app"]

_log = logging.getLogger("riskengine.service")

JSON = "application/json"
NDJSON = ("application/x-ndjson", "application/jsonl", "application/json-lines")
#: The most spool files a folder holds (one per worker process).
MAX_WORKERS = 256
#: Seconds between looks for spool files no worker holds.
ADOPT_INTERVAL = 10.0


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


#: The content codings a request body may come in (``Content-Encoding``), besides none.
ENCODINGS = ("gzip",)
#: The names of gzip in ``Content-Encoding`` and ``Accept-Encoding`` (RFC 9110 §8.4.1.3).
_GZIP = ("gzip", "x-gzip")
#: A gzip body at least this long is decompressed off the event loop.
_GUNZIP_IN_THREAD = 65536


def _encoding(request: Request) -> str | None:
    """The body's content coding: ``None`` for none (or ``identity``), ``"gzip"``; any other
    (or several) is refused with 415 and ``Accept-Encoding`` (RFC 9110 §15.5.16): a body the
    service cannot read must not be taken for JSON that is wrong."""
    given = request.headers.get("content-encoding", "").strip().lower()
    if given in ("", "identity"):
        return None
    if given in _GZIP:
        return "gzip"
    raise Problem(
        "unsupported-content-encoding",
        f"the body's Content-Encoding {given} is not one the service reads: send it as it is, "
        "or gzip it",
        headers={"Accept-Encoding": ", ".join(ENCODINGS)},
        accepted=list(ENCODINGS),
    )


def _gunzip(data: bytes, limit: int) -> bytes:
    """A gzip body decompressed (one or more members), refused with 413 once it grows past
    ``limit`` bytes (a small body may decompress into a very large one) and with 400 when it is
    not gzip or is cut short."""
    out: list[bytes] = []
    size = 0
    rest = data
    while True:
        unzip = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        try:
            part = unzip.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise Problem(
                "malformed-json", f"the gzip body does not decompress: {exc}", line=None,
                column=None,
            ) from None  # fmt: skip
        size += len(part)
        if size > limit:  # output stops at limit + 1 bytes: the rest is not read
            raise Problem(
                "body-too-large",
                f"the body exceeds {limit:,} bytes once decompressed",
                max_body=limit,
            )
        out.append(part)
        if not unzip.eof:
            raise Problem("malformed-json", "the gzip body is cut short", line=None, column=None)
        rest = unzip.unused_data
        if not rest:
            return b"".join(out)


#: A batch answer at least this long is gzip-compressed for a client that accepts it.
GZIP_ANSWER = 16384


def _accepts_gzip(request: Request) -> bool:
    """Whether ``Accept-Encoding`` takes gzip (not with ``q=0``)."""
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() in (*_GZIP, "*"):
            name, _, value = params.replace(" ", "").partition("=")
            if name != "q":
                return True
            try:
                return float(value) > 0
            except ValueError:
                return False
    return False


def _gzip_answer(answer: bytes) -> bytes:
    """A batch answer gzip'd at level 1: the demo's results shrink tenfold, 5,000 of them in
    3 ms (scoring them takes some 100 ms)."""
    return gzip.compress(answer, compresslevel=1, mtime=0)


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 past ``limit`` bytes (before reading it when
    Content-Length says so; a gzip body also once decompressed), and with 415 in a content
    coding the service does not read."""
    encoding = _encoding(request)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Problem(
            "body-too-large", f"the body has {int(length):,} bytes; at most {limit:,} are read",
            max_body=limit,
        )  # fmt: skip
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem("body-too-large", f"the body exceeds {limit:,} bytes", max_body=limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding is None:
        return body
    if len(body) < _GUNZIP_IN_THREAD:
        return _gunzip(body, limit)
    return await anyio.to_thread.run_sync(_gunzip, body, limit)  # off the event loop


#: The query parameters of the scoring endpoints.
_QUERY = ("as_of",)


def _as_of(request: Request) -> dt.date | None:
    """The scoring date of ``?as_of=YYYY-MM-DD`` (``None``: each declaration's own). Any other
    parameter, or ``as_of`` given twice, is refused: a mistyped ``?asof=`` would otherwise
    score on the declaration's date without a word."""
    given = request.query_params.multi_items()
    for name, _ in given:
        if name not in _QUERY:
            near = difflib.get_close_matches(name.lower(), _QUERY, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise Problem(
                "invalid-parameter",
                f"unknown query parameter {name!r}: {request.url.path} takes only "
                f"{', '.join(_QUERY)}{hint}",
                parameter=name,
            )
    if len(given) > 1:
        raise Problem(
            "invalid-parameter", f"as_of is given {len(given)} times; give it once",
            parameter="as_of",
        )  # fmt: skip
    if not given:
        return None
    value = given[0][1]
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Problem(
            "invalid-parameter", f"as_of={value!r} is not a date (YYYY-MM-DD)", parameter="as_of"
        ) from None


def _open_log(config: ServiceConfig, store: Any) -> tuple[DecisionLog, Path]:
    """The worker's decision log on the first free spool file of the folder
    (``decisions-worker-K.jsonl``: stable names, so that a restarted worker replays the spool
    its predecessor left), and that file."""
    folder = Path(config.spool)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, MAX_WORKERS + 1):
        path = folder / f"decisions-worker-{k}.jsonl"
        try:
            log = DecisionLog(
                spool=path, engine=store, flush_interval=config.log_interval, retry_interval=1.0
            )
        except SpoolError:
            continue  # another worker's
        return log, path
    raise SpoolError(f"every spool file of {folder} is in use ({MAX_WORKERS} workers?)")


class Service:
    """What one worker process holds: the bundle, the store, the history provider, the decision
    log and the metrics."""

    def __init__(self, config: ServiceConfig, metrics: Metrics) -> None:
        from riskengine.store.access import open_existing

        self.config = config
        self.metrics = metrics
        self.heap = HeapFreezer(enabled=config.freeze_heap)
        self._batches: anyio.CapacityLimiter | None = None  # made on the event loop
        self._first = True
        random = None
        if config.random_config is not None:
            random = RandomSelection.from_toml(
                config.random_config, key_file=config.random_key_file
            )
        lanes = LaneConfig.from_toml(config.lanes) if config.lanes is not None else None
        self.bundles = BundleHolder(
            config.bundle,
            config.public_key,
            lanes=lanes,
            random=random,
            on_change=self._changed,
            prepare=self._preload,
            on_refused=lambda _: self.metrics.reloads.labels("refused").inc(),
        )
        self.store = open_existing(config.db)
        self.history = self._new_history()
        self._preload(self.bundles.current)
        self.log, self.spool = _open_log(config, self.store)
        self.adopted = 0  # records replayed from spool files no worker held
        self._next_adoption = 0.0
        self.scorer = Scorer(self.log, self.metrics, config.log_ack == "request", self.history)
        self.started = time.time()
        self.heap.freeze()  # the bundle, the history, the store: alive as long as the worker
        self.metrics.frozen.set(self.heap.frozen)

    def _changed(self, loaded: Loaded) -> None:
        self.metrics.revision.set(loaded.revision)
        if not self._first:  # a swap: the old bundle is freed once its requests have ended
            self.heap.swapped()
        self._first = False

    def _new_history(self) -> StoreHistoryProvider:
        return StoreHistoryProvider(self.store, cache=True)

    def _preload(self, loaded: Loaded) -> None:
        """With ``preload_history``: every subject of the bundle's history blocks read at once
        (a few queries), kept current by the provider from then on."""
        if not self.config.preload_history:
            return
        started = time.perf_counter()
        try:
            subjects = sum(self.history.preload(cp.profile) for cp in loaded.engine.profiles)
        except Exception as exc:  # the store away or caching off: lookups read it lazily
            _log.warning("history not preloaded for revision %d: %s", loaded.revision, exc)
            return
        _log.info(
            "history preloaded for bundle revision %d: %d subjects in %.2f s",
            loaded.revision, subjects, time.perf_counter() - started,
        )  # fmt: skip

    def maintain(self) -> None:
        """Once a second: the bundle file, the decision log's gauges, the history listener
        (after the store came back, a provider whose notifications stopped is replaced by a
        new one with a fresh cache and a new listener)."""
        if self.bundles.changed() and self.bundles.reload():
            self.metrics.reloads.labels("loaded").inc()
        if self.heap.maintain():
            self.metrics.frozen.set(self.heap.frozen)
        stats = self.log.stats()
        if stats.store_up and time.monotonic() >= self._next_adoption:
            self._next_adoption = time.monotonic() + ADOPT_INTERVAL
            self.adopted += self._adopt_spools()
        self.metrics.observe_log(stats, self.adopted)
        if self.history.listener_error is not None:
            try:
                fresh = self._new_history()
            except Exception as exc:  # still away: the old provider reads the store uncached
                _log.debug("history listener not restarted: %s", exc)
                return
            old, self.history = self.history, fresh
            self._preload(self.bundles.current)
            self.scorer.history = fresh
            old.close()
            _log.warning("history notifications restarted: caching again")

    def _adopt_spools(self) -> int:
        """Replay the non-empty spool files of the folder that no worker holds (left by a
        worker slot that is not in use any more, e.g. after uvicorn replaced its workers while
        the store was away); returns the records written."""
        written = 0
        for path in sorted(self.spool.parent.glob("decisions-worker-*.jsonl")):
            try:
                if path == self.spool or path.stat().st_size == 0:
                    continue
                orphan = DecisionLog(spool=path, engine=self.store, retry_interval=1.0)
            except (SpoolError, OSError):
                continue  # a live worker's, or gone
            try:
                orphan.close()  # replays what the store takes; the rest stays in the file
            except RecordError as exc:
                _log.warning("spool %s not replayed: %s", path, exc)
            replayed = orphan.stats().replayed
            if replayed:
                _log.warning("replayed %d decisions from the spool %s", replayed, path)
            written += replayed
        return written

    def close(self) -> None:
        """Acknowledge every decision (store or spool), stop listening, close the store."""
        try:
            self.log.close()
        finally:
            self.history.close()
            self.store.dispose()

    # -- the endpoints
    async def score(self, request: Request) -> Response:
        if _media_type(request) != JSON:
            raise Problem(
                "unsupported-media-type",
                f"POST /v1/score reads {JSON}, not "
                f"{_media_type(request) or 'a body without a type'}",
                accepted=[JSON],
            )
        body = await _body(request, self.config.max_body)
        as_of = _as_of(request)
        loaded = self.bundles.current  # one engine from start to end
        answer = await anyio.to_thread.run_sync(self.scorer.one, loaded, body, as_of)
        return Response(answer, media_type=JSON)

    async def score_batch(self, request: Request) -> Response:
        kind = _media_type(request)
        if kind != JSON and kind not in NDJSON:
            raise Problem(
                "unsupported-media-type",
                f"POST /v1/score/batch reads a JSON array ({JSON}) or JSON Lines "
                f"({NDJSON[0]}), not {kind or 'a body without a type'}",
                accepted=[JSON, *NDJSON],
            )
        body = await _body(request, self.config.max_body)
        as_of = _as_of(request)
        loaded = self.bundles.current
        if self._batches is None:
            self._batches = anyio.CapacityLimiter(self.config.batch_threads)
        # one batch at a time (by default): a second one waits its turn instead of sharing the
        # interpreter's lock with the first, which would only delay both answers
        answer = await anyio.to_thread.run_sync(
            self.scorer.batch, loaded, body, kind in NDJSON, as_of, limiter=self._batches
        )
        if len(answer) >= GZIP_ANSWER and _accepts_gzip(request):
            packed = await anyio.to_thread.run_sync(_gzip_answer, answer)
            return Response(
                packed, media_type=JSON,
                headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
            )  # fmt: skip
        return Response(answer, media_type=JSON, headers={"Vary": "Accept-Encoding"})

    async def bundle(self, request: Request) -> Response:
        loaded = self.bundles.current
        return Response(
            orjson.dumps(_bundle_document(loaded, self.bundles.last_error)), media_type=JSON
        )

    async def healthz(self, request: Request) -> Response:
        stats = self.log.stats()
        body = {
            "status": "ok",
            "bundle_revision": self.bundles.current.revision,
            "decision_log": {
                "store_up": stats.store_up,
                "backlog": stats.backlog,
                "spooled": stats.spooled,
            },
            "history_cache": bool(self.history.cache),
            "uptime_s": round(time.time() - self.started, 3),
        }
        return Response(orjson.dumps(body), media_type=JSON)

    async def metrics_text(self, request: Request) -> Response:
        self.metrics.observe_log(self.log.stats(), self.adopted)
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _bundle_document(loaded: Loaded, refused: str | None) -> dict[str, Any]:
    return {
        "revision": loaded.revision,
        "as_of": loaded.as_of.isoformat(),
        "created_at": loaded.created_at.isoformat() + "Z",
        "key": loaded.key,
        "loaded_at": loaded.loaded_at.isoformat().replace("+00:00", "Z"),
        "profiles": [{"number": n, "name": name} for n, name in loaded.profiles],
        "last_refused": refused,
    }


Handler = Callable[[Request], Awaitable[Response]]

#: (path, method, name of the Service method, summary): the routes, and what the OpenAPI
#: document is generated from.
ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("/v1/score", "POST", "score", "Score one declaration"),
    ("/v1/score/batch", "POST", "score_batch", "Score a batch (JSON array or JSON Lines)"),
    ("/v1/bundle", "GET", "bundle", "The bundle in use"),
    ("/healthz", "GET", "healthz", "Liveness and the decision log's state"),
    ("/metrics", "GET", "metrics_text", "Prometheus metrics"),
    ("/openapi.json", "GET", "openapi", "This document"),
)
_PATHS = frozenset(path for path, *_ in ROUTES)


class _Observe:
    """ASGI middleware: every answer counted and timed by route, method and status; any
    exception a handler did not turn into a problem answered as one (500, never expected)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = False

        async def watch(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            _log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if not sent:
                response = problem_response(
                    "internal-error", f"{type(exc).__name__}: {exc}", instance=scope.get("path")
                )
                status = 500
                await response(scope, receive, send)
        finally:
            path = scope.get("path", "")
            route = path if path in _PATHS else "other"
            m = self.metrics
            m.requests.labels(route, scope.get("method", ""), str(status)).inc()
            m.latency.labels(route).observe(time.perf_counter() - started)


def _handle(method: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await method(request)
        except Problem as problem:
            return problem.response(request.url.path)

    return endpoint


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        return problem_response("not-found", f"no endpoint at {path}", instance=path)
    if exc.status_code == 405:
        allowed = [m for p, m, *_ in ROUTES if p == path]
        return problem_response(
            "method-not-allowed",
            f"{path} answers {', '.join(allowed)}, not {request.method}",
            instance=path,
            allowed=allowed,
            headers={"Allow": ", ".join(allowed)},
        )
    return problem_response(
        "internal-error", f"HTTP {exc.status_code}: {exc.detail}", instance=path
    )


def create_app(config: ServiceConfig) -> Starlette:
    """The app of one worker. The service is made at startup (lifespan) and closed at
    shutdown, after uvicorn drained the requests in flight."""
    holder: dict[str, Service] = {}
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = await anyio.to_thread.run_sync(Service, config, metrics)
        holder["service"] = service
        app.state.service = service
        loop = asyncio.get_running_loop()
        reload = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, reload.set)

        async def maintain() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reload.wait(), config.watch_interval)
                try:
                    if reload.is_set():
                        reload.clear()
                        if await anyio.to_thread.run_sync(
                            lambda: service.bundles.reload(force=True)
                        ):
                            service.metrics.reloads.labels("loaded").inc()
                    await anyio.to_thread.run_sync(service.maintain)
                except Exception:  # keep maintaining; say it
                    _log.exception("service maintenance failed")

        task = asyncio.create_task(maintain())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
            await anyio.to_thread.run_sync(service.close)
            _log.warning("decision log flushed and closed: %s", service.log.stats().summary())

    def route(name: str) -> Handler:
        async def call(request: Request) -> Response:
            if name == "openapi":
                from riskengine.service.openapi import openapi_document

                catalogue = holder["service"].bundles.current.engine.profiles.catalogue
                document = openapi_document(config, catalogue)
                return Response(orjson.dumps(document), media_type=JSON)
            method: Handler = getattr(holder["service"], name)
            return await method(request)

        return _handle(call)

    routes = [Route(path, route(name), methods=[method]) for path, method, name, _ in ROUTES]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_problem},
    )
    app.add_middleware(_Observe, metrics=metrics)
    return app


def app_from_env() -> Starlette:
    """The app of a worker started by ``riskengine serve`` (settings from the environment)."""
    return create_app(ServiceConfig.from_env())
