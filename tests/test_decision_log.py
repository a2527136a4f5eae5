"""The decision log: records in the store and read back, duplicates ignored, the store away
(spooled, then replayed exactly once), a scoring process SIGKILLed mid-run losing nothing it had
acknowledged."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from riskengine.decisionlog import DecisionLog, RecordError, SpoolError
from riskengine.demo.generate import generate
from riskengine.evaluator import Engine, Lane, ScoreResult
from riskengine.store import migrate

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "decision_log_child.py"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(ROOT / "profiles")


@pytest.fixture(scope="module")
def declarations() -> list:  # type: ignore[type-arg]
    return [r.declaration for r in generate(600, seed=3)]


def _count(url: str, where: str = "") -> int:
    from riskengine.store.engine import connect

    eng = connect(url)
    try:
        with eng.connect() as connection:
            return int(
                connection.execute(
                    sa.text(f"SELECT count(*) FROM decision_log {where}")
                ).scalar_one()
            )
    finally:
        eng.dispose()


def _wait(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_records_are_written_and_read_back(
    store_url: str,
    tmp_path: Path,
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    results = [engine.score(d) for d in declarations]
    with DecisionLog(store_url, spool=tmp_path / "spool.jsonl", revision="rev-1",
                     batch_size=100) as log:  # fmt: skip
        for result, declaration in zip(results, declarations, strict=True):
            log.record(result, declaration)
        assert log.flush(60)
        stats = log.stats()
        records = {r.declaration_id: r for r in log.read()}
    assert stats.written == len(declarations) and stats.spool_appends == 0
    assert stats.backlog == 0 and stats.store_up
    assert len(records) == len(declarations)
    fired = next(r for r in results if r.fired)
    declaration = next(d for d in declarations if d.id == fired.declaration_id)
    got = records[fired.declaration_id or ""]
    assert got.bundle_revision == "rev-1"
    assert got.declaration_date == declaration.header["date"] == got.as_of
    assert got.office == declaration.header["office"]
    assert got.regime == declaration.header["regime"]
    assert got.selected and got.lane == fired.lane.value
    assert got.random_selected is None  # no random selection configured
    assert got.fired == [
        {
            "key": f.key,
            "number": f.number,
            "degree": f.degree,
            "controls": [{"code": c.code, "kind": c.kind.value} for c in f.controls],
            "items": list(f.items),
        }
        for f in fired.fired
    ]
    assert got.controls == [{"code": c.code, "kind": c.kind.value} for c in fired.controls]
    green = next(r for r in results if not r.fired)
    assert records[green.declaration_id or ""].lane == "green"
    assert records[green.declaration_id or ""].fired == []


def test_duplicates_are_ignored_per_declaration_and_revision(
    store_url: str,
    tmp_path: Path,
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    first, second = declarations[:2]
    with DecisionLog(store_url, spool=tmp_path / "spool.jsonl", revision="rev-1") as log:
        for _ in range(3):
            log.record(engine.score(first), first)
        log.record(engine.score(first), first, revision="rev-2")  # another bundle: a new decision
        log.flush(60)
        log.record(engine.score(first), first)  # in another batch
        log.record(engine.score(second), second)
        log.flush(60)
        stats = log.stats()
        keys = [r.key for r in log.read()]
    assert sorted(keys) == sorted([(first.id, "rev-1"), (first.id, "rev-2"), (second.id, "rev-1")])
    assert (stats.written, stats.duplicates) == (3, 3)


def test_a_result_without_id_or_revision_is_refused(tmp_path: Path, engine: Engine) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    with DecisionLog(url, spool=tmp_path / "spool.jsonl") as log:
        no_id = engine.score({"date": "2025-03-01", "office": "UA100110"})
        with pytest.raises(RecordError, match="without a declaration id"):
            log.record(no_id)
        with_id = engine.score({"id": "D1", "date": "2025-03-01"})
        with pytest.raises(RecordError, match="no bundle revision"):
            log.record(with_id)
        declaration = {"id": "D1", "date": "2025-03-01"}
        with pytest.raises(TypeError) as info:  # the arguments the other way round
            log.record(declaration, with_id, revision="r1")  # type: ignore[arg-type]
        assert str(info.value) == (
            "record(result, declaration): the result is a ScoreResult, not a dict (the "
            "arguments the other way round?)"
        )
        log.record(with_id, revision="r1")
    with pytest.raises(RecordError, match="closed"):
        log.record(with_id, revision="r1")
    assert _count(url) == 1


def test_bundle_revision_of_the_result_comes_first(tmp_path: Path, engine: Engine) -> None:
    """A result scored from a bundle carries its revision; the log takes it (as text)."""
    import attrs

    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    plain = engine.score({"id": "D1", "date": "2025-03-01"})
    result = attrs.evolve(plain, bundle_revision=7)
    with DecisionLog(url, spool=tmp_path / "spool.jsonl", revision="fallback") as log:
        log.record(result)
        log.flush(30)
        assert [r.key for r in log.read()] == [("D1", "7")]


def test_one_spool_per_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    spool = tmp_path / "spool.jsonl"
    with DecisionLog(url, spool=spool, revision="r"):
        code = (
            "import sys; from riskengine.decisionlog import DecisionLog, SpoolError\n"
            "try:\n"
            f"    DecisionLog({url!r}, spool={str(spool)!r}, revision='r')\n"
            "except SpoolError as exc:\n"
            "    print(exc); sys.exit(3)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "is in use by another process" in done.stdout
    with DecisionLog(url, spool=spool, revision="r"):  # free again once closed
        pass
    assert SpoolError.__mro__[1].__name__ == "RiskEngineError"


# -- the store away: spooled, then replayed exactly once


def _take_table_away(url: str) -> None:
    """The store refuses every write (the table is gone) until :func:`_bring_table_back`."""
    from riskengine.store.engine import connect

    eng = connect(url)
    with eng.begin() as connection:
        connection.execute(sa.text("ALTER TABLE decision_log RENAME TO decision_log_away"))
    eng.dispose()


def _bring_table_back(url: str) -> None:
    from riskengine.store.engine import connect

    eng = connect(url)
    with eng.begin() as connection:
        connection.execute(sa.text("ALTER TABLE decision_log_away RENAME TO decision_log"))
    eng.dispose()


def test_sqlite_store_away_spools_then_replays_exactly_once(
    tmp_path: Path,
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    spool = tmp_path / "spool.jsonl"
    log = DecisionLog(url, spool=spool, revision="r1", batch_size=50, retry_interval=0.2)
    first, during, after = declarations[:200], declarations[200:400], declarations[400:]
    for d in first:
        log.record(engine.score(d), d)
    assert log.flush(30)
    _take_table_away(url)
    for d in during:
        log.record(engine.score(d), d)
    assert log.flush(30)
    away = log.stats()
    assert not away.store_up and away.spooled == len(during) == away.backlog
    assert "decision_log" in (away.last_error or "")
    lines = spool.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(during)
    assert {json.loads(line)[0] for line in lines} == {d.id for d in during}
    _bring_table_back(url)
    for d in after:
        log.record(engine.score(d), d)
    log.record(engine.score(during[0]), during[0])  # once more: still one row
    assert log.flush(30)
    _wait(lambda: log.stats().spooled == 0)
    log.close()
    stats = log.stats()
    # what came while the log did not know the store was back was spooled too
    assert len(during) <= stats.replayed <= len(during) + len(after)
    assert stats.backlog == 0 and stats.store_up and stats.duplicates == 1
    assert stats.written == len(declarations)
    assert spool.stat().st_size == 0
    assert _count(url) == len(declarations)
    ids = {r.declaration_id for r in DecisionLog(url, spool=tmp_path / "s2", revision="r").read()}
    assert ids == {d.id for d in declarations}


def test_the_spool_is_replayed_when_the_log_starts(
    tmp_path: Path,
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    spool = tmp_path / "spool.jsonl"
    _take_table_away(url)
    with DecisionLog(url, spool=spool, revision="r1", retry_interval=3600) as log:
        for d in declarations[:100]:
            log.record(engine.score(d), d)
    assert log.stats().spooled == 100 and log.stats().failures >= 1
    with spool.open("ab") as stream:  # a crash in the middle of an append
        stream.write(b'["cut short", "r1", "2024-')
    _bring_table_back(url)
    with DecisionLog(url, spool=spool, revision="r1") as log:
        _wait(lambda: log.stats().spooled == 0)
        stats = log.stats()
    assert stats.replayed == 100 and stats.skipped_lines == 1
    assert _count(url) == 100


# -- PostgreSQL behind a proxy that is stopped and started again


class _Proxy:
    """A TCP forwarder to the PostgreSQL server: stopping it is the store going away."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        assert self._server is not None
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress
        self._server.close()
        for s in self._conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._conns = []


@pytest.mark.postgresql
def test_postgresql_stopped_during_a_run_every_decision_once(
    pg_schema: tuple[sa.URL, str], tmp_path: Path, engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:  # fmt: skip
    base, schema = pg_schema
    direct = base.update_query_dict({"options": f"-csearch_path={schema}"})
    migrate.init(direct.render_as_string(hide_password=False))
    proxy = _Proxy((base.host or "127.0.0.1", base.port or 5432))
    proxy.start()
    url = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    spool = tmp_path / "spool.jsonl"
    log = DecisionLog(url, spool=spool, revision="r1", batch_size=50, retry_interval=0.2)
    try:
        for d in declarations[:200]:
            log.record(engine.score(d), d)
        assert log.flush(30) and log.stats().written == 200
        proxy.stop()
        for d in declarations[200:400]:
            log.record(engine.score(d), d)
        assert log.flush(60)
        away = log.stats()
        assert not away.store_up and away.spooled == 200 and away.backlog == 200
        proxy.start()  # the same port again
        for d in declarations[400:]:
            log.record(engine.score(d), d)
        assert log.flush(30)
        _wait(lambda: log.stats().spooled == 0)
    finally:
        log.close()
        proxy.stop()
    stats = log.stats()
    assert 200 <= stats.replayed <= 400 and stats.written == len(declarations)
    assert stats.spool_appends == stats.replayed and stats.failures >= 1
    direct_url = direct.render_as_string(hide_password=False)
    assert _count(direct_url) == len(declarations)
    with DecisionLog(direct_url, spool=tmp_path / "s2", revision="r1") as again:
        for d in declarations[150:250]:  # replaying or re-recording changes nothing
            again.record(engine.score(d), d)
        again.flush(30)
        assert again.stats().duplicates == 100
    assert _count(direct_url) == len(declarations)


# -- a scoring process killed mid-run


def _run_and_kill(url: str, spool: Path, acks_wanted: int) -> int:
    """Run the child until it has acknowledged at least ``acks_wanted`` records, let it run a
    little more, SIGKILL it; the number of records it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), url, str(spool), "rev-k"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    acked = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("ACK "):
                acked = int(line.split()[1])
                if acked >= acks_wanted:
                    break
        time.sleep(0.05)  # killed while it goes on scoring and writing
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert acked >= acks_wanted
    return acked


@pytest.mark.parametrize("store", ["up", "away"])
def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, store: str) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    spool = tmp_path / "spool.jsonl"
    if store == "away":
        _take_table_away(url)
    acked = _run_and_kill(url, spool, 600)
    if store == "away":
        assert _count_lines(spool) >= acked  # every acknowledged record is in the spool
        _bring_table_back(url)
    with DecisionLog(url, spool=spool, revision="rev-k") as log:  # the restart
        _wait(lambda: log.stats().spooled == 0)
        stats = log.stats()
        stored = [r.declaration_id for r in log.read()]
    want = [r.declaration.id for r in generate(20_000, seed=3)][:acked]
    assert set(want) <= set(stored)
    assert len(stored) == len(set(stored))  # exactly once
    if store == "away":
        assert stats.replayed == len(stored) >= acked


def _count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def test_many_scoring_threads_and_a_full_queue(
    tmp_path: Path,
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    """record() from several threads at once; with a tiny queue they wait for room (counted),
    and nothing is dropped."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    results = [(engine.score(d), d) for d in declarations]
    log = DecisionLog(url, spool=tmp_path / "spool.jsonl", revision="r", batch_size=10,
                      max_queue=20)  # fmt: skip

    def work(part: int) -> None:
        for result, declaration in results[part::4]:
            log.record(result, declaration)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    stats = log.stats()
    assert stats.written == len(declarations) and stats.backlog == 0
    assert stats.blocked > 0
    assert _count(url) == len(declarations)


def test_record_many_logs_a_batch_as_record_does_one_by_one(
    tmp_path: Path,
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    """A batch queued at once gives the records ``record`` gives one by one (the scored time
    aside), and waits for room a batch at a time when the queue is small."""
    pairs = [(engine.score(d), d) for d in declarations]
    rows = {}
    for name, many in (("one", False), ("many", True)):
        url = f"sqlite:///{tmp_path / name}.db"
        migrate.init(url)
        with DecisionLog(url, spool=tmp_path / f"{name}.jsonl", revision="r", batch_size=10,
                         max_queue=20) as log:  # fmt: skip
            if many:
                log.record_many(pairs)
            else:
                for result, declaration in pairs:
                    log.record(result, declaration)
            assert log.flush(60)
            rows[name] = [attrs.evolve(r, scored_at=None) for r in log.read()]
            assert log.stats().written == len(declarations)
    assert rows["many"] == rows["one"] and len(rows["one"]) == len(declarations)


def test_record_many_queues_nothing_when_one_cannot_be_logged(
    tmp_path: Path, engine: Engine
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    good = engine.score({"id": "D1", "date": "2025-03-01"})
    no_id = engine.score({"date": "2025-03-01"})
    with DecisionLog(url, spool=tmp_path / "spool.jsonl", revision="r") as log:
        with pytest.raises(RecordError, match="without a declaration id"):
            log.record_many([(good, None), (no_id, None)])
        assert log.flush(30) and log.read() == []
        log.record_many([(good, None)], revision="r2")
        assert log.flush(30) and [r.key for r in log.read()] == [("D1", "r2")]
    with pytest.raises(RecordError, match="closed"):
        log.record_many([(good, None)])


def test_a_decision_batch_keeps_what_the_record_needs_not_the_declaration(
    tmp_path: Path, engine: Engine
) -> None:
    """The service fills a DecisionBatch while it scores: each decision is checked when it is
    added, and the record is the one ``record`` makes from the declaration."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    data = {"id": "D1", "date": "2025-03-01", "office": "UA100110", "regime": "IM40"}
    with DecisionLog(url, spool=tmp_path / "spool.jsonl", revision="r") as log:
        batch = log.batch()
        batch.add(engine.score(data), data)
        with pytest.raises(RecordError, match="without a declaration id"):
            batch.add(engine.score({"date": "2025-03-01"}))
        assert len(batch) == 1
        data.clear()  # the batch took what it needs when the decision was added
        log.record_batch(batch)
        assert log.flush(30)
        (record,) = log.read()
    assert (record.declaration_id, record.office, record.regime) == ("D1", "UA100110", "IM40")
    assert record.declaration_date == dt.date(2025, 3, 1) and record.bundle_revision == "r"


def test_a_process_that_exits_without_close_writes_everything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    code = (
        "from riskengine.decisionlog import DecisionLog\n"
        "from riskengine.evaluator import Engine\n"
        f"engine = Engine.load({str(ROOT / 'profiles')!r})\n"
        f"log = DecisionLog({url!r}, spool={str(tmp_path / 's.jsonl')!r}, revision='r',"
        " flush_interval=60)\n"
        "for k in range(250):\n"
        "    log.record(engine.score({'id': f'D{k}', 'date': '2025-03-01'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _count(url) == 250


def test_r0007_goes_down_and_up_again(db_url: str, tmp_path: Path) -> None:
    from alembic import command

    from riskengine.store.engine import connect

    migrate.init(db_url)
    with DecisionLog(db_url, spool=tmp_path / "s.jsonl", revision="r") as log:
        log.record(ScoreResult("D1", dt.date(2025, 3, 1), (), (), Lane.GREEN))
    store = connect(db_url)
    try:
        with store.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "r0007-1")
            assert "decision_log" not in sa.inspect(connection).get_table_names()
            command.upgrade(migrate.alembic_config(connection), "head")
            assert migrate.current_revision(connection) == migrate.head_revision()
            assert "decision_log" in sa.inspect(connection).get_table_names()
    finally:
        store.dispose()
    assert _count(db_url) == 0


def test_a_store_without_the_table_says_how_to_fix_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    _take_table_away(url)
    with DecisionLog(url, spool=tmp_path / "s.jsonl", revision="r") as log:
        log.record(ScoreResult("D1", dt.date(2025, 3, 1), (), (), Lane.GREEN))
        log.flush(30)
        stats = log.stats()
    assert stats.spooled == 1 and not stats.store_up
    assert stats.last_error == (
        "(sqlite3.OperationalError) no such table: decision_log (a store older than revision "
        "r0007 needs `riskengine db upgrade`)"
    )


def test_neither_store_nor_spool_holds_the_records_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk is full too: nothing is acknowledged (flush times out), nothing is dropped,
    and everything is written once the spool can be written again."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    _take_table_away(url)
    log = DecisionLog(url, spool=tmp_path / "s.jsonl", revision="r", retry_interval=0.1)
    spool = log._spool
    append = spool.append

    def full(rows: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "append", full)
    for k in range(30):
        log.record(ScoreResult(f"D{k}", dt.date(2025, 3, 1), (), (), Lane.GREEN))
    assert not log.flush(0.5)
    stats = log.stats()
    assert stats.queued == 30 and stats.spooled == 0 and stats.backlog == 30
    assert "No space left on device" in (stats.last_error or "")
    monkeypatch.setattr(spool, "append", append)
    assert log.flush(30)
    assert log.stats().spooled == 30
    _bring_table_back(url)
    _wait(lambda: log.stats().spooled == 0)
    log.close()
    assert log.stats().replayed == 30 and _count(url) == 30


def test_record_without_blocking_refuses_when_full(tmp_path: Path) -> None:
    """For an event loop: ``block=False`` raises LogFull instead of waiting for room."""
    from riskengine.decisionlog import LogFull

    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    log = DecisionLog(url, spool=tmp_path / "s.jsonl", revision="r", batch_size=5, max_queue=5,
                      flush_interval=3600)  # fmt: skip
    gate = threading.Event()
    write = log._sink.write

    def slow(rows: object) -> int:
        gate.wait(30)
        return write(rows)  # type: ignore[arg-type]

    log._sink.write = slow  # type: ignore[method-assign]
    accepted = refused = 0
    for k in range(40):
        try:
            log.record(ScoreResult(f"D{k}", dt.date(2025, 3, 1), (), (), Lane.GREEN), block=False)
            accepted += 1
        except LogFull as exc:
            refused += 1
            assert "waiting for the store" in str(exc)
    gate.set()
    log.close()
    stats = log.stats()
    assert refused > 0 and stats.refused == refused
    assert stats.written == accepted == _count(url)


def test_a_spool_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.init(url)
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    with pytest.raises(SpoolError, match=r"cannot use .*a-file/spool.jsonl as the spool: "):
        DecisionLog(url, spool=tmp_path / "a-file" / "spool.jsonl", revision="r")
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(SpoolError, match=r"cannot use .*a-folder as the spool: Is a directory"):
        DecisionLog(url, spool=tmp_path / "a-folder", revision="r")


def _scored(engine: Engine, declarations: list) -> list[tuple[ScoreResult, object]]:  # type: ignore[type-arg]
    """Fired and green results with headers of every shape the log meets: a date object, ISO
    text, text that is not a date, a datetime, no office, and a random selection."""
    import attrs

    from riskengine.evaluator import RandomSelection

    drawn = Engine(engine.profiles, random=RandomSelection(b"test-key-0123456789ab", rate=0.5))
    fired = [d for d in declarations if engine.score(d).fired][:3]
    green = [d for d in declarations if not engine.score(d).fired][:3]
    out: list[tuple[ScoreResult, object]] = [(engine.score(d), d) for d in fired + green]
    out += [  # the same declarations, drawn or not: other ids (one record per id)
        (attrs.evolve(drawn.score(d), declaration_id=f"{d.id}-drawn"), d)
        for d in fired[:1] + green[:2]
    ]
    plain = engine.score({"id": "X1", "date": "2025-03-01"})
    out += [
        (plain, {"id": "X1", "date": "2025-03-01", "office": "UA100110", "regime": "40"}),
        (attrs.evolve(plain, declaration_id="X2"), {"date": "not a date", "office": 7}),
        (attrs.evolve(plain, declaration_id="X3"), {"date": dt.datetime(2025, 3, 1, 12)}),
        (attrs.evolve(plain, declaration_id="X4"), None),
        (attrs.evolve(plain, declaration_id="X5"), {"date": dt.date(2025, 2, 28)}),
    ]
    return out


def test_the_writer_builds_each_record_s_own_row(
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    """The rows the writer builds from the scoring thread's references (with its caches of
    dates and seconds) are the rows of the records the decisions are, to the microsecond."""
    from riskengine.decisionlog.record import DecisionRecord, RowBuilder, entry_from_result

    scored = _scored(engine, declarations)
    second = 1_764_000_000 * 10**9  # the times: within one second, at its edges, the next ones
    times = [second, second + 999, second + 1_000, second + 999_999_999, second + 10**9 + 5_000]
    builder = RowBuilder()
    for round_ in range(2):  # the second round finds every value in the caches
        entries, expected = [], []
        for k, (result, decl) in enumerate(scored):
            when = times[k % len(times)] + round_ * 3 * 10**9
            entries.append(entry_from_result(result, decl, "rev-9", when))  # type: ignore[arg-type]
            header: Any = getattr(decl, "header", None) or decl or {}
            day = header.get("date")
            expected.append(
                DecisionRecord(
                    result.declaration_id or "", "rev-9",
                    dt.date.fromisoformat(day) if isinstance(day, str) and day[0].isdigit()
                    else day if type(day) is dt.date else None,
                    result.as_of,
                    header.get("office") if isinstance(header.get("office"), str) else None,
                    header.get("regime") if isinstance(header.get("regime"), str) else None,
                    bool(result.fired), result.lane.value, result.random_selected,
                    [{"key": f.key, "number": f.number, "degree": f.degree,
                      "controls": [{"code": c.code, "kind": c.kind.value} for c in f.controls],
                      "items": list(f.items)} for f in result.fired],
                    [{"code": c.code, "kind": c.kind.value} for c in result.controls],
                    dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=when // 1000),
                ).row()
            )  # fmt: skip
        assert builder.rows(entries) == expected
    assert {r[8] for r in expected} == {None, 0, 1}  # random selection both ways and none
    assert {r[6] for r in expected} == {0, 1}


@pytest.mark.postgresql
def test_postgresql_copy_writes_the_built_rows(
    pg_schema: tuple[sa.URL, str],
    engine: Engine,
    declarations: list,  # type: ignore[type-arg]
) -> None:
    """The writer's rows go through COPY into the table as the records they are (values COPY
    must escape included), once per (declaration, revision)."""
    import attrs

    from riskengine.decisionlog import StoreSink
    from riskengine.decisionlog.record import DecisionRecord, RowBuilder, entry_from_result

    base, schema = pg_schema
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    migrate.init(url)
    scored = _scored(engine, declarations)
    plain = engine.score({"id": "E1", "date": "2025-03-01"})
    odd = [  # a tab, a backslash, a newline: escaped for COPY
        (attrs.evolve(plain, declaration_id="E\\1"), {"office": "UA\t1", "regime": "4\n0"}),
        (attrs.evolve(plain, declaration_id="\\N"), {"office": "\\N"}),
    ]
    builder = RowBuilder()
    now = time.time_ns()

    def rows(pairs: list, revision: str) -> list:  # type: ignore[type-arg]
        return builder.rows([entry_from_result(r, d, revision, now) for r, d in pairs])

    sink = StoreSink(url)
    try:
        first, again, escaped = rows(scored, "a"), rows(scored, "b"), rows(odd, "c")
        assert sink.write(first) == len(scored)
        assert sink.write(again) == len(scored)
        assert sink.write(escaped) == len(odd)
        assert sink.write(first) == 0  # duplicates ignored
        read = sink.read()
    finally:
        sink.close()
    by_revision: dict[str, list[DecisionRecord]] = {}
    for record in read:
        by_revision.setdefault(record.bundle_revision, []).append(record)
    strip = [attrs.evolve(r, bundle_revision="") for r in by_revision["a"]]
    assert strip == [attrs.evolve(r, bundle_revision="") for r in by_revision["b"]]
    assert sorted(strip, key=lambda r: r.declaration_id) == sorted(
        (attrs.evolve(DecisionRecord.from_row(r), bundle_revision="") for r in first),
        key=lambda r: r.declaration_id,
    )
    assert {(r.declaration_id, r.office, r.regime) for r in by_revision["c"]} == {
        ("E\\1", "UA\t1", "4\n0"),
        ("\\N", "\\N", None),
    }


@pytest.mark.postgresql
def test_postgresql_a_failed_batch_leaves_the_next_one_writable(
    pg_schema: tuple[sa.URL, str], engine: Engine
) -> None:
    """COPY's temporary table is created once per connection; a batch refused in the
    transaction that created it (a NUL in a value) does not keep the next batch, on the same
    pooled connection, from finding it."""
    import attrs

    from riskengine.decisionlog import StoreSink
    from riskengine.decisionlog.record import RowBuilder, entry_from_result

    base, schema = pg_schema
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    migrate.init(url)
    plain = engine.score({"id": "F1", "date": "2025-03-01"})
    builder = RowBuilder()
    now = time.time_ns()
    bad = builder.rows([entry_from_result(attrs.evolve(plain, declaration_id="F\x002"), None,
                                          "r", now)])  # fmt: skip
    good = builder.rows([entry_from_result(plain, None, "r", now)])
    sink = StoreSink(url, engine=sa.create_engine(url, pool_size=1))
    try:
        with pytest.raises(Exception, match="NUL"):
            sink.write(bad)
        assert sink.write(good) == 1
        assert sink.write(good) == 0
        assert [r.key for r in sink.read()] == [("F1", "r")]
    finally:
        sink.engine.dispose()


def test_the_shutdown_summary_says_what_was_written_and_what_waits() -> None:
    from riskengine.decisionlog.log import LogStats

    stats = LogStats(
        queued=0, spooled=1200, written=35000, replayed=40, duplicates=2, spool_appends=1200,
        failures=3, skipped_lines=0, blocked=0, refused=0, store_up=False,
        last_error="connection refused",
    )  # fmt: skip
    assert stats.summary() == (
        "35,000 written to the store (40 replayed from the spool, 2 already there), 1,200 "
        "waiting in the spool, 3 failed store writes; the store's last error: connection refused"
    )
    done = attrs.evolve(stats, spooled=0, failures=0, queued=5)
    assert done.summary() == (
        "35,000 written to the store (40 replayed from the spool, 2 already there), 0 waiting "
        "in the spool, 0 failed store writes, 5 not written"
    )
