"""``riskengine serve`` as a clearance system sees it: a real server process (uvicorn) on a
free loopback port, with the real PostgreSQL store (history and decision log).

(a) its results equal the library's for 10,000 demo declarations, each decision logged once;
(b) a problem document for every kind of bad request, never a 500;
(c) the store cut (a TCP proxy in between) during a scoring run: every decision in the log
    exactly once afterwards, the spool replayed and counted;
(d) a bundle swapped under load: no request fails, every response carries the old or the new
    revision, never a mix in a batch; a bundle with a bad signature is refused, the old one
    keeps serving;
(e) /metrics is Prometheus text and counts what was done;
(f) SIGTERM during requests: the requests in flight are answered, the log flushed.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from riskengine.bundle import keygen
from riskengine.demo.generate import generate
from riskengine.demo.output import raw_declaration, write_demo
from riskengine.evaluator import Engine
from riskengine.store import migrate
from riskengine.store.engine import connect
from riskengine.store.history import StoreHistoryProvider
from tests.conftest import _pg_base_url, require_postgresql
from tests.service_support import (
    PYTHON,
    ROOT,
    Client,
    Proxy,
    Server,
    chunks,
    make_bundle,
    sample_texts,
)

pytestmark = pytest.mark.postgresql

N = 10_000
PROBLEM = "application/problem+json"


class World:
    def __init__(self, folder: Path, url: str, base: sa.URL, schema: str) -> None:
        self.folder = folder
        self.url = url
        self.base = base
        self.schema = schema
        self.key = folder / "deploy.key"
        self.pub = folder / "deploy.key.pub"
        keygen(self.key)
        self.bundle = make_bundle(folder / "approved.bundle", self.key, 1)
        self.raw = [raw_declaration(r) for r in generate(N, seed=7)]
        self.lines = [json.dumps(d).encode() for d in self.raw]

    def server(
        self, *extra: str | Path, bundle: Path | None = None, db: str | None = None
    ) -> Server:
        spool = self.folder / f"spool-{uuid.uuid4().hex[:6]}"
        return Server(
            "--bundle", bundle or self.bundle, "--public-key", self.pub, "--db", db or self.url,
            "--spool", spool, *extra,
        )  # fmt: skip

    def count(self, revision: int, distinct: bool = False) -> int:
        what = "count(DISTINCT declaration_id)" if distinct else "count(*)"
        store = connect(self.url)
        try:
            with store.connect() as connection:
                return int(
                    connection.execute(
                        sa.text(f"SELECT {what} FROM decision_log WHERE bundle_revision = :r"),
                        {"r": str(revision)},
                    ).scalar_one()
                )
        finally:
            store.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_postgresql()
    base = _pg_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    try:
        migrate.init(url)
        store = connect(url)
        try:
            write_demo(store, N, seed=7)  # the declarations' history: outcomes and controls
        finally:
            store.dispose()
        yield World(tmp_path_factory.mktemp("service"), url, base, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[Server]:
    with world.server("--max-body", str(1024 * 1024), "--preload-history") as running:
        yield running


def library_results(world: World, bundle: Path) -> list[dict[str, Any]]:
    """What the library says for every declaration: the same bundle, history from the same
    store."""
    engine = Engine.from_bundle(bundle, world.pub)
    store = connect(world.url)
    try:
        history = StoreHistoryProvider(store, cache=True, listen=False)
        for cp in engine.profiles:
            history.preload(cp.profile)
        return [engine.score(d, history=history).to_dict() for d in world.raw]
    finally:
        store.dispose()


def metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    client = Client(port)
    try:
        status, headers, body = client.request("GET", "/metrics")
    finally:
        client.close()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def total(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


def wait_for_backlog(port: int, timeout: float = 30.0) -> None:
    """Until the service's decision log has written everything to the store."""
    deadline = time.monotonic() + timeout
    while True:
        client = Client(port)
        _, health = client.json("GET", "/healthz")
        client.close()
        log = health["decision_log"]
        if log["backlog"] == 0 and log["store_up"]:
            return
        assert time.monotonic() < deadline, f"the decision log did not catch up: {health}"
        time.sleep(0.1)


def run_threads(n: int, work: Any) -> list[Any]:
    """``work(k)`` on ``n`` threads; the first exception is raised here."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(k: int) -> None:
        try:
            results[k] = work(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# -- (a) the service's results are the library's -----------------------------------------------


def test_results_equal_the_library_for_10000_declarations(world: World, server: Server) -> None:
    expected = library_results(world, world.bundle)
    got: list[Any] = [None] * N
    singles = range(0, 2000)  # one declaration a request, 4 clients at once

    def single(k: int) -> None:
        client = Client(server.port)
        try:
            for i in singles[k::4]:
                status, headers, body = client.request("POST", "/v1/score", world.lines[i])
                assert status == 200, body
                assert headers["content-type"] == "application/json"
                got[i] = json.loads(body)
        finally:
            client.close()

    run_threads(4, single)
    client = Client(server.port)
    try:
        for n, part in enumerate(chunks(range(2000, N), 500)):
            if n % 2:  # a JSON array
                body = json.dumps([world.raw[i] for i in part]).encode()
                status, _, answer = client.request("POST", "/v1/score/batch", body)
            else:  # JSON Lines
                body = b"\n".join(world.lines[i] for i in part) + b"\n"
                status, _, answer = client.request(
                    "POST", "/v1/score/batch", body, content_type="application/x-ndjson"
                )
            assert status == 200, answer
            batch = json.loads(answer)
            assert batch["bundle_revision"] == 1
            assert (batch["scored"], batch["rejected"]) == (len(part), 0)
            for i, result in zip(part, batch["results"], strict=True):
                got[i] = result
    finally:
        client.close()
    assert got == expected
    lanes = collections.Counter(r["lane"] for r in got)
    assert sum(1 for r in got if r["fired"]) > 100 and len(lanes) >= 2  # not a trivial run
    # every decision written off the request path (--log-ack background): in the log, once
    wait_for_backlog(server.port)
    assert world.count(1) == N and world.count(1, distinct=True) == N


# -- (b) problem documents ------------------------------------------------------------------------


def test_every_bad_request_gets_a_problem_document_never_a_500(
    world: World, server: Server
) -> None:
    one = world.lines[0]
    cases: list[tuple[str, str, bytes | None, str | None, int, str, dict[str, Any]]] = [
        ("POST", "/v1/score", b'{"id": "X", "items": [', "application/json", 400, "malformed-json",
         {"line": 1}),
        ("POST", "/v1/score", b"\xff\xfe{}", "application/json", 400, "malformed-json", {}),
        ("POST", "/v1/score", b"[1, 2]", "application/json", 422, "not-a-declaration", {}),
        ("POST", "/v1/score", b'"a string"', "application/json", 422, "not-a-declaration", {}),
        ("POST", "/v1/score", b'{"id": "X", "items": [{"net_mass": "heavy"}]}',
         "application/json", 422, "invalid-declaration", {"field": "item.net_mass", "item": 1}),
        ("POST", "/v1/score", b'{"id": "X", "items": {"hs_code": "6403"}}', "application/json",
         422, "invalid-declaration", {"field": "items"}),
        ("POST", "/v1/score", b'{"id": "X"}', "application/json", 422, "invalid-declaration",
         {"field": "declaration.date", "reason": "no as-of date: give the declaration a date, "
                                                 "or the request ?as_of=YYYY-MM-DD"}),
        ("POST", "/v1/score", b'{"date": "2024-09-10", "items": []}', "application/json", 422,
         "invalid-declaration", {"field": "id"}),
        ("POST", "/v1/score?as_of=2025-02-30", one, "application/json", 400,
         "invalid-parameter", {"parameter": "as_of"}),
        ("POST", "/v1/score?asof=2024-05-01", one, "application/json", 400,
         "invalid-parameter", {"parameter": "asof", "detail": "unknown query parameter 'asof': "
                               "/v1/score takes only as_of; did you mean as_of?"}),
        ("POST", "/v1/score?as_of=2024-05-01&as_of=2024-05-02", one, "application/json", 400,
         "invalid-parameter", {"parameter": "as_of",
                               "detail": "as_of is given 2 times; give it once"}),
        ("POST", "/v1/score/batch?explain=true", one, "application/x-ndjson", 400,
         "invalid-parameter", {"parameter": "explain", "detail": "unknown query parameter "
                               "'explain': /v1/score/batch takes only as_of"}),
        ("POST", "/v1/score", one, "text/plain", 415, "unsupported-media-type", {}),
        ("POST", "/v1/score", one, None, 415, "unsupported-media-type", {}),
        ("POST", "/v1/score", b"{" + b" " * (1024 * 1024) + b"}", "application/json", 413,
         "body-too-large", {"max_body": 1024 * 1024}),
        ("POST", "/v1/score/batch", b'{"id": "X"}', "application/json", 422,
         "not-a-declaration", {}),
        ("POST", "/v1/score/batch", b"[]", "application/json", 422, "empty-batch", {}),
        ("POST", "/v1/score/batch", b"\n \n", "application/x-ndjson", 422, "empty-batch", {}),
        ("POST", "/v1/score/batch", b"[{]", "application/json", 400, "malformed-json", {}),
        ("POST", "/v1/score/batch", one, "application/xml", 415, "unsupported-media-type", {}),
        ("GET", "/v1/nothing", None, None, 404, "not-found", {}),
        ("GET", "/v1/score", None, None, 405, "method-not-allowed", {"allowed": ["POST"]}),
        ("DELETE", "/v1/bundle", None, None, 405, "method-not-allowed", {"allowed": ["GET"]}),
    ]  # fmt: skip
    client = Client(server.port)
    try:
        for method, path, body, ctype, status, slug, extra in cases:
            got, headers, answer = client.request(method, path, body, content_type=ctype)
            where = f"{method} {path} {body!r:.60} {ctype}"
            assert got == status, (where, answer)
            assert headers["content-type"] == PROBLEM, where
            problem = json.loads(answer)
            assert problem["type"] == f"urn:riskengine:problem:{slug}", where
            assert problem["status"] == status and problem["title"] and problem["detail"], where
            assert problem["instance"] == path.split("?")[0], where
            for key, value in extra.items():
                assert problem[key] == value, (where, problem)
        # a gzip body (one member or several) is read as the same body sent as it is
        plain = b"\n".join(world.lines[20:520])  # 750 kB, 80 kB gzip'd: unzipped off the loop
        ndjson = "application/x-ndjson"
        want = client.request("POST", "/v1/score/batch", plain, content_type=ndjson)
        zipped = [gzip.compress(plain), gzip.compress(plain[:999]) + gzip.compress(plain[999:])]
        for body in zipped:
            got = client.request(
                "POST", "/v1/score/batch", body, content_type=ndjson,
                headers={"Content-Encoding": "gzip"},
            )  # fmt: skip
            assert (got[0], json.loads(got[2])) == (200, json.loads(want[2]))
        assert "content-encoding" not in want[1] and want[1]["vary"] == "Accept-Encoding"
        # and a large answer comes gzip'd to a client that accepts it
        packed = client.request(
            "POST", "/v1/score/batch", zipped[0], content_type=ndjson,
            headers={"Content-Encoding": "gzip", "Accept-Encoding": "br, gzip;q=0.8"},
        )  # fmt: skip
        assert packed[1]["content-encoding"] == "gzip" and len(packed[2]) < len(want[2]) / 4
        assert json.loads(gzip.decompress(packed[2])) == json.loads(want[2])
        # any other coding is refused, not read as JSON that is wrong; so is gzip that is not,
        # is cut short, or grows past --max-body (1 MiB here) once decompressed
        for body, coding, status, slug, detail in [
            (plain, "br", 415, "unsupported-content-encoding",
             "the body's Content-Encoding br is not one the service reads: send it as it is, or "
             "gzip it"),
            (plain, "gzip", 400, "malformed-json",
             "the gzip body does not decompress: Error -3 while decompressing data: incorrect "
             "header check"),
            (zipped[0][:-20], "gzip", 400, "malformed-json", "the gzip body is cut short"),
            (gzip.compress(b" " * (2 * 1024 * 1024)), "gzip", 413, "body-too-large",
             "the body exceeds 1,048,576 bytes once decompressed"),
        ]:  # fmt: skip
            got, headers, answer = client.request(
                "POST", "/v1/score", body, headers={"Content-Encoding": coding}
            )
            problem = json.loads(answer)
            assert (got, problem["type"], problem["detail"]) == (
                status, f"urn:riskengine:problem:{slug}", detail,
            ), coding  # fmt: skip
            if status == 415:
                assert headers["accept-encoding"] == "gzip" and problem["accepted"] == ["gzip"]
        # a batch with bad rows: each reported with its row and reason, the good ones scored
        rows = b"\n".join([world.lines[1], b'{"id": "BAD1", "items": [{"net_mass": []}]}',
                           b"not json", b"", world.lines[2], b"[3]",
                           b'{"date": "2024-09-10"}', b'{"id": "NODATE"}'])  # fmt: skip
        got, _, answer = client.request(
            "POST", "/v1/score/batch", rows, content_type="application/x-ndjson"
        )
        assert got == 200
        batch = json.loads(answer)
        assert (batch["scored"], batch["rejected"]) == (2, 5)
        results = batch["results"]
        assert [r.get("id") for r in (results[0], results[3])] == [
            world.raw[1]["id"], world.raw[2]["id"],
        ]  # fmt: skip
        assert results[1] == {
            "rejected": True, "row": 2, "id": "BAD1", "field": "item.net_mass", "item": 1,
            "reason": results[1]["reason"],
        }  # fmt: skip
        assert "number" in results[1]["reason"]
        assert results[2]["row"] == 3 and results[2]["field"] is None
        assert "JSON" in results[2]["reason"]
        assert results[4]["row"] == 6 and results[4]["field"] == "declaration"
        assert results[5]["row"] == 7 and results[5]["field"] == "id"  # no id: cannot be logged
        assert results[6] == {
            "rejected": True, "row": 8, "id": "NODATE", "field": "declaration.date", "item": None,
            "reason": "no as-of date: give the declaration a date, or the request "
                      "?as_of=YYYY-MM-DD",
        }  # fmt: skip
    finally:
        client.close()
    found = metrics(server.port)
    assert total(found, "riskengine_http_requests_total", status="500") == 0
    assert total(found, "riskengine_http_requests_total", route="other", status="404") >= 1


# -- (e) metrics ------------------------------------------------------------------------------


def test_metrics_parse_as_prometheus_text_and_count(world: World, server: Server) -> None:
    wait_for_backlog(server.port)  # what earlier tests scored is in the store
    before = metrics(server.port)
    client = Client(server.port)
    try:
        for _ in range(3):
            status, bundle = client.json("GET", "/v1/bundle")
            assert status == 200
        body = b"\n".join(world.lines[3000:3200])
        status, _, answer = client.request(
            "POST", "/v1/score/batch", body, content_type="application/x-ndjson"
        )
        assert status == 200
    finally:
        client.close()
    wait_for_backlog(server.port)
    after = metrics(server.port)
    results = json.loads(answer)["results"]
    # the decision log's records are counted as they go (a counter: rate() works across restarts)
    assert (
        delta_written := total(after, "riskengine_decision_log_records_total", kind="written")
        - total(before, "riskengine_decision_log_records_total", kind="written")
    ) + total(after, "riskengine_decision_log_records_total", kind="duplicates") - total(
        before, "riskengine_decision_log_records_total", kind="duplicates"
    ) == 200, delta_written
    client = Client(server.port)
    try:
        text = client.request("GET", "/metrics")[2].decode()
    finally:
        client.close()
    assert "# TYPE riskengine_decision_log_records_total counter" in text

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("riskengine_http_requests_total", route="/v1/bundle", status="200") == 3
    assert delta("riskengine_http_requests_total", route="/v1/score/batch", status="200") == 1
    assert delta("riskengine_http_request_duration_seconds_count", route="/v1/bundle") == 3
    assert delta("riskengine_declarations_scored_total") == 200
    for lane in ("green", "yellow", "red"):
        assert delta("riskengine_declarations_scored_total", lane=lane) == sum(
            1 for r in results if r["lane"] == lane
        )
    fired = collections.Counter(f["number"] for r in results for f in r["fired"])
    assert fired  # the 200 declarations fire something
    for number, n in fired.items():
        assert delta("riskengine_profiles_fired_total", profile=number) == n
    assert total(after, "riskengine_bundle_revision") == 1
    assert total(after, "riskengine_decision_log_backlog") >= 0
    assert ("riskengine_decision_log_spooled", ()) in after
    # the loaded bundle is out of the collector's walks (--freeze-heap, the default)
    assert total(after, "riskengine_heap_frozen_objects") > 10_000
    assert bundle["revision"] == 1 and len(bundle["profiles"]) == len(sample_texts())
    status, document = Client(server.port).json("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/v1/score", "/v1/score/batch", "/v1/bundle", "/healthz", "/metrics", "/openapi.json",
    }  # fmt: skip
    assert "Declaration" in document["components"]["schemas"]


# -- (c) the store cut during a run -------------------------------------------------------------


def test_store_cut_during_a_run_every_decision_logged_exactly_once(world: World) -> None:
    base = world.base
    proxy = Proxy((base.host or "127.0.0.1", base.port or 5432))
    proxy.restore()
    through = (
        base.set(host="127.0.0.1", port=proxy.port)
        .update_query_dict({"options": f"-csearch_path={world.schema}"})
        .render_as_string(hide_password=False)
    )
    bundle = make_bundle(world.folder / "cut.bundle", world.key, 7)
    wanted = list(range(4000, 5500))
    statuses: collections.Counter[int] = collections.Counter()
    problems: set[str] = set()
    done = [0]
    server = world.server(
        "--log-ack", "background", "--log-interval", "2", bundle=bundle, db=through
    )
    try:
        server.start()

        def work(k: int) -> list[dict[str, Any]]:
            client = Client(server.port)
            out = []
            try:
                for i in wanted[k::4]:
                    while True:
                        status, headers, body = client.request("POST", "/v1/score", world.lines[i])
                        statuses[status] += 1
                        if status == 200:
                            out.append(json.loads(body))
                            done[0] += 1
                            break
                        assert status == 503 and headers["content-type"] == PROBLEM, body
                        assert headers["retry-after"] == "1"
                        problems.add(json.loads(body)["type"])
                        time.sleep(0.05)
            finally:
                client.close()
            return out

        def cut() -> None:
            # cut while decisions wait in memory for the writer (it writes every 2 s): they
            # cannot reach the store and go to the spool
            while True:
                if done[0] >= 500:
                    client = Client(server.port)
                    _, health = client.json("GET", "/healthz")
                    client.close()
                    if health["decision_log"]["backlog"] >= 20:
                        break
                time.sleep(0.01)
            proxy.cut()
            time.sleep(2.0)
            proxy.restore()

        cutter = threading.Thread(target=cut)
        cutter.start()
        answered = [r for part in run_threads(4, work) for r in part]
        cutter.join()
        assert len(answered) == len(wanted) and {r["bundle_revision"] for r in answered} == {7}
        assert statuses[503] > 0 and problems == {"urn:riskengine:problem:store-unavailable"}
        assert set(statuses) == {200, 503}

        def settled() -> bool:
            _, health = Client(server.port).json("GET", "/healthz")
            log = health["decision_log"]
            return bool(log["backlog"] == 0 and log["store_up"] and health["history_cache"])

        deadline = time.monotonic() + 30
        while not settled():
            assert time.monotonic() < deadline, "the decision log did not catch up"
            time.sleep(0.2)
        found = metrics(server.port)
        appends = total(found, "riskengine_decision_log_records_total", kind="spool_appends")
        replayed = total(found, "riskengine_decision_log_records_total", kind="replayed")
        duplicates = total(found, "riskengine_decision_log_records_total", kind="duplicates")
        # spooled while the store was away, all replayed; a batch whose commit reached the store
        # just as the connection was cut was spooled too, and found there again on replay
        assert appends >= 1 and replayed + duplicates == appends, (found, server.stderr)
        assert total(found, "riskengine_decision_log_records_total", kind="failures") >= 1
        written = total(found, "riskengine_decision_log_records_total", kind="written")
        assert written + duplicates == len(wanted)  # each decision inserted once, or found there
    finally:
        server.stop()
        proxy.close()
    assert server.proc is not None and server.proc.returncode == 0
    assert world.count(7) == len(wanted) and world.count(7, distinct=True) == len(wanted)


# -- (d) a bundle swapped under load -----------------------------------------------------------


def test_bundle_swapped_under_load_one_revision_per_response(world: World) -> None:
    live = world.folder / "live.bundle"
    shutil.copyfile(world.bundle, live)
    texts = sample_texts()
    dropped = "2A/08/2013/00117-04"  # fires often on the demo data; revision 2 has it no more
    del texts[dropped]
    other = world.folder / "other.key"
    keygen(other)
    stop = threading.Event()
    seen: list[tuple[int, set[int], set[str]]] = []
    server = world.server("--watch-interval", "0.1", "--preload-history", bundle=live)
    try:
        server.start()

        def work(k: int) -> int:
            client = Client(server.port)
            n = 0
            try:
                while not stop.is_set():
                    start = (n * 97 + k * 1000) % (N - 60)
                    if n % 2:
                        body = b"\n".join(world.lines[start : start + 60])
                        status, _, answer = client.request(
                            "POST", "/v1/score/batch", body, content_type="application/x-ndjson"
                        )
                        assert status == 200, answer
                        batch = json.loads(answer)
                        revisions = {r["bundle_revision"] for r in batch["results"]}
                        numbers = {f["number"] for r in batch["results"] for f in r["fired"]}
                        seen.append((batch["bundle_revision"], revisions, numbers))
                    else:
                        status, _, answer = client.request("POST", "/v1/score", world.lines[start])
                        assert status == 200, answer
                        result = json.loads(answer)
                        numbers = {f["number"] for f in result["fired"]}
                        rev = result["bundle_revision"]
                        seen.append((rev, {rev}, numbers))
                    n += 1
            finally:
                client.close()
            return n

        def until(predicate: Any) -> None:
            client = Client(server.port)
            try:
                deadline = time.monotonic() + 30
                while not predicate(client.json("GET", "/v1/bundle")[1]):
                    assert time.monotonic() < deadline, "the service did not take the bundle"
                    time.sleep(0.05)
            finally:
                client.close()

        def swap() -> None:
            try:
                time.sleep(1.0)
                make_bundle(live, world.key, 2, texts)  # replaced atomically (os.replace)
                until(lambda b: b["revision"] == 2)
                time.sleep(0.5)
                make_bundle(live, other, 3)  # signed with a key the service does not trust
                until(lambda b: b["last_refused"] is not None)
                time.sleep(0.5)
            finally:
                stop.set()

        swapper = threading.Thread(target=swap)
        swapper.start()
        counts = run_threads(4, work)
        swapper.join()
        assert sum(counts) == len(seen) > 40
        for top, revisions, numbers in seen:
            assert revisions == {top}, "a response mixes revisions"
            assert top in (1, 2)
            if top == 2:
                assert dropped not in numbers
        assert {top for top, _, _ in seen} == {1, 2}
        assert any(dropped in numbers for top, _, numbers in seen if top == 1)
        _, bundle = Client(server.port).json("GET", "/v1/bundle")
        assert bundle["revision"] == 2 and bundle["last_refused"]
        assert "signature" in bundle["last_refused"]
        assert len(bundle["profiles"]) == len(texts)
        found = metrics(server.port)
        assert total(found, "riskengine_bundle_reloads_total", outcome="loaded") == 1
        assert total(found, "riskengine_bundle_reloads_total", outcome="refused") == 1
        assert total(found, "riskengine_bundle_revision") == 2
    finally:
        server.stop()
    assert b"refused, revision 2 keeps serving" in server.stderr


# -- (f) graceful shutdown -------------------------------------------------------------------


def test_sigterm_answers_the_requests_in_flight(world: World) -> None:
    bundle = make_bundle(world.folder / "term.bundle", world.key, 9)
    server = world.server("--preload-history", "--log-ack", "request", bundle=bundle)
    server.start()
    sent = threading.Event()
    parts = [range(k * 1500, (k + 1) * 1500) for k in range(4)]

    def work(k: int) -> dict[str, Any]:
        client = Client(server.port)
        try:
            body = b"\n".join(world.lines[i] for i in parts[k])
            if k == 3:
                sent.set()
            status, _, answer = client.request(
                "POST", "/v1/score/batch", body, content_type="application/x-ndjson"
            )
            assert status == 200, answer
            return dict(json.loads(answer))
        finally:
            client.close()

    def terminate() -> None:
        sent.wait()
        time.sleep(0.3)  # every request sent and being scored
        assert server.proc is not None
        server.proc.send_signal(15)

    killer = threading.Thread(target=terminate)
    killer.start()
    started = time.monotonic()
    answers = run_threads(4, work)
    killer.join()
    assert server.proc is not None
    server.proc.wait(60)  # no second signal
    code = server.stop()
    assert code == 0, server.stderr
    assert [a["scored"] for a in answers] == [1500] * 4
    assert time.monotonic() - started < 60
    assert world.count(9) == 6000  # acknowledged before answering, flushed at shutdown
    assert (
        b"decision log flushed and closed: 6,000 written to the store (0 replayed from the "
        b"spool, 0 already there), 0 waiting in the spool, 0 failed store writes\n"
    ) in server.stderr
    with pytest.raises(OSError):
        Client(server.port, timeout=2).request("GET", "/healthz")


# -- several worker processes -----------------------------------------------------------------


def test_several_workers_share_the_port_the_metrics_and_the_store(world: World) -> None:
    bundle = make_bundle(world.folder / "workers.bundle", world.key, 11)
    spool = world.folder / "spool-workers"
    server = Server(
        "--bundle", bundle, "--public-key", world.pub, "--db", world.url, "--spool", spool,
        "--workers", "2", "--preload-history",
    )  # fmt: skip
    wanted = list(range(6000, 6400))
    engine = Engine.from_bundle(bundle, world.pub)
    store = connect(world.url)
    try:
        history = StoreHistoryProvider(store, cache=True, listen=False)
        expected = {i: engine.score(world.raw[i], history=history).to_dict() for i in wanted}
    finally:
        store.dispose()
    got: dict[int, Any] = {}
    try:
        server.start()  # the first worker answers; wait for the second (its spool file)
        deadline = time.monotonic() + 60
        while len(list(spool.glob("*.jsonl"))) < 2:
            assert time.monotonic() < deadline, server.stderr.decode()
            time.sleep(0.1)

        def work(k: int) -> None:
            client = Client(server.port)  # a connection of its own: either worker may take it
            try:
                for i in wanted[k::8]:
                    status, _, body = client.request("POST", "/v1/score", world.lines[i])
                    assert status == 200, body
                    got[i] = json.loads(body)
            finally:
                client.close()

        run_threads(8, work)
        assert got == expected
        wait_for_backlog(server.port)
        found = metrics(server.port)  # either worker answers it, with both workers' counts
        assert total(found, "riskengine_http_requests_total", route="/v1/score") == len(wanted)
        assert total(found, "riskengine_declarations_scored_total") == len(wanted)
        assert total(found, "riskengine_bundle_revision") == 11
    finally:
        assert server.stop() == 0, server.stderr
    assert sorted(p.name for p in spool.glob("*.jsonl")) == [
        "decisions-worker-1.jsonl", "decisions-worker-2.jsonl",
    ], server.stderr.decode()  # fmt: skip
    assert server.stderr.count(b"decision log flushed and closed") == 2
    assert world.count(11) == len(wanted) and world.count(11, distinct=True) == len(wanted)


# -- the docs say what the code does ----------------------------------------------------------


def test_docs_service_md_names_every_problem_type_metric_and_option() -> None:
    from riskengine.cli.serve import serve
    from riskengine.service import PROBLEM_TYPES
    from riskengine.service.metrics import Metrics

    doc = (Path(__file__).resolve().parent.parent / "docs" / "service.md").read_text("utf-8")
    for slug, kind in PROBLEM_TYPES.items():
        assert f"| `{slug}` | {kind.status} |" in doc, slug
    names = {m.name for m in Metrics().registry.collect()}
    for name in names:
        assert f"`{name}" in doc, name
    for param in serve.params:
        for opt in param.opts:
            assert f"`{opt}" in doc, opt


def test_docs_service_md_examples_are_what_the_service_answers(
    world: World, server: Server
) -> None:
    """The session of docs/service.md ran on this world: the demo data of seed 7 and the
    sample profiles' bundle, revision 1."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "service.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```json\n")[1:]]
    single, batch = json.loads(blocks[0]), json.loads(blocks[1])
    client = Client(server.port)
    try:
        status, _, body = client.request("POST", "/v1/score", world.lines[3475])  # boots.json
        assert status == 200 and json.loads(body) == single
        rows = b"\n".join([
            world.lines[3476],
            b'{"id": "X-1", "date": "2024-09-10", "items": [{"net_mass": "heavy"}]}',
            b"[1]",
        ])  # fmt: skip
        status, _, body = client.request(
            "POST", "/v1/score/batch", rows, content_type="application/x-ndjson"
        )
        assert status == 200 and json.loads(body) == batch
    finally:
        client.close()


def test_a_spool_file_no_worker_holds_is_replayed(world: World) -> None:
    """Decisions spooled by a worker slot nobody uses any more (uvicorn replaced its workers
    while the store was away) reach the store through the workers that run now."""
    from riskengine.decisionlog import DecisionLog

    bundle = make_bundle(world.folder / "orphans.bundle", world.key, 13)
    engine = Engine.from_bundle(bundle, world.pub)
    spool = world.folder / "spool-orphans"
    spool.mkdir()
    orphan = spool / "decisions-worker-5.jsonl"
    down = "postgresql+psycopg://postgres@127.0.0.1:1/test"  # nothing listens: all spooled
    with DecisionLog(down, spool=orphan) as log:
        for d in world.raw[7000:7050]:
            log.record(engine.score(d), d)
    assert log.stats().spooled == 50 and world.count(13) == 0
    server = Server(
        "--bundle", bundle, "--public-key", world.pub, "--db", world.url, "--spool", spool,
    )  # fmt: skip
    try:
        server.start()
        deadline = time.monotonic() + 30
        while world.count(13) < 50:
            assert time.monotonic() < deadline, server.stderr
            time.sleep(0.2)
        time.sleep(1.5)  # the next maintenance round copies the count into the metrics
        found = metrics(server.port)
        assert total(found, "riskengine_decision_log_records_total", kind="adopted") == 50
    finally:
        assert server.stop() == 0
    assert world.count(13) == 50 and world.count(13, distinct=True) == 50
    assert orphan.stat().st_size == 0
    assert b"replayed 50 decisions from the spool" in server.stderr


def test_random_selection_is_the_librarys_and_is_logged(world: World) -> None:
    from riskengine.evaluator import RandomSelection

    config = world.folder / "random.toml"
    config.write_text(
        '[random]\nlane = "red"\nrate = 0.05\n\n'
        '[[random.rates]]\noffice = "UA100110"\nrate = 0.2\n',
        encoding="utf-8",
    )
    key = {"RISKENGINE_RANDOM_KEY": "service-test-key-never-in-production"}
    bundle = make_bundle(world.folder / "random.bundle", world.key, 15)
    wanted = range(8000, 9000)
    os_key = "RISKENGINE_RANDOM_KEY"
    key_file = world.folder / "random.key"
    key_file.write_text(key[os_key], encoding="utf-8")
    selection = RandomSelection.from_toml(config, key_file=key_file)
    engine = Engine.from_bundle(bundle, world.pub)
    engine.random = selection
    store = connect(world.url)
    try:
        history = StoreHistoryProvider(store, cache=True, listen=False)
        expected = [engine.score(world.raw[i], history=history).to_dict() for i in wanted]
    finally:
        store.dispose()
    server = Server(
        "--bundle", bundle, "--public-key", world.pub, "--db", world.url,
        "--spool", world.folder / "spool-random", "--random-config", config, env=key,
    )  # fmt: skip
    try:
        server.start()
        client = Client(server.port)
        body = b"\n".join(world.lines[i] for i in wanted)
        status, _, answer = client.request(
            "POST", "/v1/score/batch", body, content_type="application/x-ndjson"
        )
        client.close()
        assert status == 200
        got = json.loads(answer)["results"]
        assert got == expected
        chosen = sum(r["random_selected"] for r in got)
        assert 0 < chosen < len(got)
        assert all(r["lane"] == "red" for r in got if r["random_selected"])
        assert total(metrics(server.port), "riskengine_random_selected_total") == chosen
    finally:
        assert server.stop() == 0
    logged = connect(world.url)
    try:
        with logged.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT count(*), count(*) FILTER (WHERE random_selected) FROM decision_log "
                    "WHERE bundle_revision = '15'"
                )
            ).one()
    finally:
        logged.dispose()
    assert (row[0], row[1]) == (len(wanted), chosen)
    assert key[os_key].encode() not in server.stderr  # the key is never said


def test_a_port_in_use_is_an_error_of_status_1(world: World, server: Server) -> None:
    args = world.server().args  # the same options, on the port the module's service holds
    done = subprocess.run(
        [PYTHON, "-m", "riskengine", "serve", "--port", str(server.port), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120,
    )  # fmt: skip
    said = done.stderr.decode()
    assert done.returncode == 1, said
    assert "address already in use" in said
    assert said.rstrip().endswith("error: the service could not start (see the messages above)")
    assert Client(server.port).json("GET", "/healthz")[0] == 200  # the first one still serves


def test_the_openapi_document_describes_the_answers(world: World, server: Server) -> None:
    import jsonschema
    from openapi_spec_validator import validate

    client = Client(server.port)
    try:
        _, document = client.json("GET", "/openapi.json")
        _, _, single = client.request("POST", "/v1/score", world.lines[3475])
        rows = b"\n".join([world.lines[10], b'{"id": "B", "items": [{"net_mass": "x"}]}'])
        _, _, batch = client.request(
            "POST", "/v1/score/batch", rows, content_type="application/x-ndjson"
        )
        _, _, problem = client.request("POST", "/v1/score", b"[1]")
        _, bundle = client.json("GET", "/v1/bundle")
    finally:
        client.close()

    validate(document)  # a valid OpenAPI 3.1 document, as client generators need it

    def check(instance: Any, ref: str) -> None:
        schema = {"$ref": ref, "components": document["components"]}
        jsonschema.Draft202012Validator(schema).validate(instance)

    check(json.loads(single), "#/components/schemas/Result")
    check(json.loads(batch), "#/components/schemas/Batch")
    check(json.loads(problem), "#/components/schemas/Problem")
    for raw in world.raw[:200]:
        check(raw, "#/components/schemas/Declaration")
    score = document["paths"]["/v1/score"]["post"]
    assert set(score["responses"]) >= {"200", "400", "404", "405", "413", "415", "422", "503"}
    bundle_schema = document["paths"]["/v1/bundle"]["get"]["responses"]["200"]["content"]
    jsonschema.Draft202012Validator(bundle_schema["application/json"]["schema"]).validate(bundle)
    with pytest.raises(jsonschema.ValidationError):  # the schemas do say something
        check({"id": "x", "lane": "purple"}, "#/components/schemas/Result")
