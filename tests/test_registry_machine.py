"""Random lifecycles of registry profiles by random users (hypothesis state machine).

Invariants after every step: at most one edition of a profile in force on any date; profile
numbers and sequence numbers unique; an approved text never changes (its hash as first seen);
every successful action is one log entry by its actor, a refused one writes nothing; the chain
verifies."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections import Counter
from typing import Any

import hypothesis.strategies as st
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from riskengine import registry as r
from riskengine.registry.lifecycle import sha256
from riskengine.registry.state import table
from tests.registry_support import DRAFT, TESTS, new_store, record_backtest

START = dt.date(2025, 1, 1)
NAMES = ("Undervalued footwear from China", "Second profile", "Third profile")
USERS = ("os:analyst", "os:head", "os:secretary")
days = st.integers(min_value=-20, max_value=400)
lags = st.integers(min_value=-3, max_value=20)  # in force from, after the decision
users = st.sampled_from(USERS)


def _day(offset: int) -> dt.date:
    return START + dt.timedelta(days=offset)


def _draft(name: str, floor: int) -> str:
    return DRAFT.replace("Undervalued footwear from China", name).replace("< 400", f"< {floor}")


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="registry-machine-")
        self.store = new_store(f"sqlite:///{os.path.join(self.folder, 'store.db')}")
        self.done: list[tuple[str, str]] = []  # (action, actor) of every successful action
        self.texts: dict[int, str] = {}  # edition key -> hash of its approved text, first seen

    def teardown(self) -> None:
        self.store.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers
    def _try(self, name: str, actor: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        before = len(self._log())
        try:
            result = call(self.store, *args, actor=actor, **kwargs)
        except r.RegistryError:
            assert len(self._log()) == before, f"a refused {name} wrote to the log"
            return None
        self.done.append((name, actor))
        return result

    def _log(self) -> list[r.AuditEntry]:
        with self.store.connect() as connection:
            return r.entries(connection)

    def _rows(self, name: str, *columns: str) -> list[Any]:
        t = table(name)
        with self.store.connect() as connection:
            return list(connection.execute(sa.select(*(t.c[c] for c in columns)).order_by(t.c.pk)))

    def _pick(self, rows: list[Any], index: int) -> Any:
        return rows[index % len(rows)] if rows else None

    def _pending(self) -> list[Any]:
        subs = self._rows("profile_submissions", "pk", "status")
        return [x for x in subs if x.status == "pending"]

    def _approved(self) -> list[Any]:
        return [p for p in self._rows("profiles", "base_number", "status") if p.base_number]

    # -- rules
    @rule(name=st.sampled_from(NAMES), floor=st.integers(300, 500), actor=users)
    def submit_new(self, name: str, floor: int, actor: str) -> None:
        text = _draft(name, floor)
        self._try("submit", actor, r.submit, text, tests=TESTS,
                  backtest_run=record_backtest(self.store, text))  # fmt: skip

    @precondition(lambda self: self._pending())
    @rule(i=st.integers(0, 9), decided=st.integers(-20, 100), lag=lags, actor=users)
    def approve(self, i: int, decided: int, lag: int, actor: str) -> None:
        sub = self._pick(self._pending(), i)
        start = decided + lag
        self._try("approve", actor, r.approve, sub.pk, decision=f"EC-{decided}",
                  decided_on=_day(decided), group="1A", unit="12",
                  in_force_from=_day(start), in_force_to=_day(start + 700))  # fmt: skip

    @precondition(lambda self: self._pending())
    @rule(i=st.integers(0, 9), decided=days, actor=users, go=st.integers(0, 3))
    def return_for_rework(self, i: int, decided: int, actor: str, go: int) -> None:
        sub = self._pick(self._pending(), i)
        if sub is not None and go == 0:  # the commission returns one submission in four
            self._try("return", actor, r.return_for_rework, sub.pk, decision="EC-r",
                      decided_on=_day(decided))  # fmt: skip

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), floor=st.integers(300, 500), actor=users)
    def submit_amendment(self, i: int, floor: int, actor: str) -> None:
        ed = self._pick(self._rows("profile_editions", "number", "text"), i)
        if ed is None:
            return
        text = re.sub(r"< \d+\n", f"< {floor}\n", ed.text)
        self._try("submit", actor, r.submit, text, tests=TESTS,
                  backtest_run=record_backtest(self.store, text), amends=ed.number)  # fmt: skip

    @precondition(lambda self: self._pending())
    @rule(i=st.integers(0, 9), decided=days, lag=lags, actor=users)
    def amend(self, i: int, decided: int, lag: int, actor: str) -> None:
        sub = self._pick(self._pending(), i)
        if sub is not None:
            self._try("amend", actor, r.amend, sub.pk, decision="EC-a", decided_on=_day(decided),
                      in_force_from=_day(decided + lag))  # fmt: skip

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), digit=st.integers(0, 9), actor=users)
    def clarify(self, i: int, digit: int, actor: str) -> None:
        ed = self._pick(self._rows("profile_editions", "pk", "number"), i)
        if ed is None:
            return
        with self.store.connect() as connection:
            text = r.current_text(connection, ed.pk)
        text = re.sub(r'phone "[^"]*"', f'phone "+380 44 000 000{digit}"', text)
        self._try("clarify", actor, r.clarify, ed.number, text, ground="10.2.3", reason="phone")

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), on=days, ground=st.sampled_from(sorted(r.SUSPENSION_GROUNDS)),
          actor=users)  # fmt: skip
    def suspend(self, i: int, on: int, ground: str, actor: str) -> None:
        p = self._pick(self._approved(), i)
        if p is not None and p.base_number is not None:
            self._try("suspend", actor, r.suspend, p.base_number, ground=ground, on=_day(on),
                      reason="r")  # fmt: skip

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), on=days, actor=users)
    def resume(self, i: int, on: int, actor: str) -> None:
        p = self._pick(self._approved(), i)
        if p is not None and p.base_number is not None:
            self._try("resume", actor, r.resume, p.base_number, on=_day(on), reason="r")

    @precondition(lambda self: self._approved())
    @rule(i=st.integers(0, 9), decided=days, last=days, actor=users)
    def terminate(self, i: int, decided: int, last: int, actor: str) -> None:
        p = self._pick(self._approved(), i)
        if p is not None and p.base_number is not None:
            self._try("terminate", actor, r.terminate, p.base_number, decision="EC-t",
                      decided_on=_day(decided), last_day=_day(last))  # fmt: skip

    # -- invariants
    @invariant()
    def at_most_one_edition_in_force_per_profile(self) -> None:
        eds = self._rows("profile_editions", "in_force_from", "in_force_to")
        probe = {START}
        for e in eds:
            probe |= {e.in_force_from, e.in_force_from - dt.timedelta(days=1)}
            if e.in_force_to is not None:
                probe |= {e.in_force_to, e.in_force_to + dt.timedelta(days=1)}
        with self.store.connect() as connection:
            for day in probe:
                owners = Counter(x.profile_pk for x in r.in_force(connection, day))
                assert all(n == 1 for n in owners.values()), (day, owners)

    @invariant()
    def numbers_are_unique_and_well_formed(self) -> None:
        eds = self._rows("profile_editions", "profile_pk", "edition", "number")
        assert len({e.number for e in eds}) == len(eds)
        for e in eds:
            assert e.number.endswith(f"-{e.edition:02d}")
        seqs = [p.sequence for p in self._rows("profiles", "sequence") if p.sequence is not None]
        assert len(set(seqs)) == len(seqs)
        by_profile: dict[int, list[int]] = {}
        for e in eds:
            by_profile.setdefault(e.profile_pk, []).append(e.edition)
        assert all(v == list(range(1, len(v) + 1)) for v in by_profile.values())

    @invariant()
    def approved_texts_never_change(self) -> None:
        for e in self._rows("profile_editions", "pk", "text", "sha256"):
            assert e.sha256 == sha256(e.text)
            assert self.texts.setdefault(e.pk, e.sha256) == e.sha256

    @invariant()
    def every_action_is_logged_and_the_chain_verifies(self) -> None:
        log = self._log()
        assert [(e.action, e.actor) for e in log] == self.done
        assert r.verify(self.store).ok


RegistryMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("REGISTRY_MACHINE_EXAMPLES", "12")),
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRegistryMachine = RegistryMachine.TestCase
