"""Keeping history caches current: the writer's hook (every backend, one process) and
PostgreSQL's ``LISTEN``/``NOTIFY`` (every process, several service replicas).

**In the process.** :func:`history_changed` is called by the store's writer
(:func:`~riskengine.store.writer.write_outcomes`, :func:`~riskengine.store.writer.write_controls`)
with the keys of the declarations whose outcome or controls it wrote. Every live
:class:`~riskengine.store.history.online.StoreHistoryProvider` on the same database then works
out, **inside the writing transaction** (where a declaration written in the same transaction is
visible), which of its cached subjects the write touches and drops them; it drops them again
when that transaction commits and when its connection goes back to the pool, so that a lookup
on another thread that reloaded a subject in between (and read the data before the commit) is
not kept. After ``with engine.begin(): write...`` every lookup sees the write.

**Across processes (PostgreSQL).** Revision r0005's statement-level triggers send
``NOTIFY riskengine_history, 'schema:pk,pk,...'`` for every committed change of
``clearance_outcomes``, ``outcome_reasons`` or ``control_results``, whoever made it. A provider
with ``listen=True`` keeps one connection in ``LISTEN`` on a background thread and drops the
subjects of the declarations named (``*``: everything). Notifications arrive a moment after the
commit; :meth:`~riskengine.store.history.online.StoreHistoryProvider.sync` waits until every
change committed before it was called has been applied (it sends a marker of its own through the
same channel: PostgreSQL delivers notifications in commit order).

SQLite and DuckDB have no notifications: writes made by another process are not seen by a
cache there (call ``clear_cache()``, or use no cache).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from riskengine.store.history.online import StoreHistoryProvider

__all__ = ["CHANNEL", "history_changed", "register"]

#: The notification channel of revision r0005's triggers.
CHANNEL = "riskengine_history"

_providers: weakref.WeakSet[StoreHistoryProvider] = weakref.WeakSet()
_lock = threading.Lock()
_PENDING = "riskengine_history_pending"


def _database(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def register(provider: StoreHistoryProvider) -> None:
    """Have ``provider`` told about the writer's changes (while it lives)."""
    with _lock:
        _providers.add(provider)
        _listen_to_engine(provider.engine)


def _listen_to_engine(engine: sa.Engine) -> None:
    """Install the transaction and check-in hooks on ``engine`` (once).

    ``Connection.info`` is the pool record's: it lives as long as the database connection. The
    subjects a transaction's writes touched are dropped again at its commit (the hook runs just
    before the database commits) and, once the commit is surely done, at the next ``begin`` on
    that connection or when it goes back to the pool -- then forgotten.
    """
    if engine.__dict__.get("_riskengine_history_hooks"):
        return
    engine.__dict__["_riskengine_history_hooks"] = True

    def at_commit(connection: sa.Connection) -> None:
        _flush(connection.info, clear=False)

    def at_begin(connection: sa.Connection) -> None:
        _flush(connection.info, clear=True)

    def at_checkin(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            _flush(record.info, clear=True)

    sa.event.listen(engine, "commit", at_commit)
    sa.event.listen(engine, "rollback", at_commit)
    sa.event.listen(engine, "begin", at_begin)
    sa.event.listen(engine.pool, "checkin", at_checkin)


def _flush(info: dict[str, Any], *, clear: bool) -> None:
    pending = info.pop(_PENDING, None) if clear else info.get(_PENDING)
    if pending:
        for provider, keys in list(pending.items()):
            provider.forget_subjects(keys)


def history_changed(connection: sa.Connection, decl_pks: Iterable[int]) -> None:
    """The writer stored outcomes or controls of the declarations ``decl_pks`` on
    ``connection`` (in its open transaction): drop the cached subjects they belong to."""
    with _lock:
        providers = list(_providers)
    if not providers:
        return
    keys = sorted(set(decl_pks))
    if not keys:
        return
    database = _database(connection.engine)
    with _lock:  # the writer's engine may be another than the providers' (same database)
        _listen_to_engine(connection.engine)
    for provider in providers:
        if provider.closed or _database(provider.engine) != database:
            continue
        touched = provider.subjects_of_declarations(connection, keys)
        if not touched:
            continue
        provider.forget_subjects(touched)
        pending: dict[Any, set[Any]] = connection.info.setdefault(_PENDING, {})
        pending.setdefault(provider, set()).update(touched)
