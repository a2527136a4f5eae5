"""Rejected rows: what a reject says, and the rejects file next to the source
(``row,line,declaration,reason,<the raw row>``), cut back to the committed rows on resume."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import IO, Any

import attrs

from riskengine.ingest.read import Group

__all__ = ["Reject", "RejectsFile", "rejects_of"]


@attrs.frozen
class Reject:
    """A source row that was not stored: where it is, which declaration, why, and the row."""

    row: int
    line: int
    declaration: str | None
    reason: str
    raw: tuple[str, ...]


class RejectsFile:
    """``row,line,declaration,reason,<the raw row>``: opened on the first reject."""

    def __init__(self, path: str, header: list[str] | None, keep: int | None) -> None:
        """``keep``: resuming, the number of rejects the committed batches wrote (the file is
        cut back to them); ``None``: a new ingest (an old file is removed)."""
        self.path = path
        self.header = header
        self.stream: IO[str] | None = None
        self.writer: Any = None
        self.count = 0
        if os.path.exists(path):
            if keep is not None:
                self._cut(keep)
            else:
                os.remove(path)

    def _cut(self, keep: int) -> None:
        """Keep the first ``keep`` rejects (those of committed batches: a batch writes its
        rejects before it commits, so an interrupted one may have left some)."""
        limit = csv.field_size_limit(1 << 30)  # a rejected JSON line can be long
        try:
            with open(path := self.path, encoding="utf-8", errors="surrogateescape",
                      newline="") as stream:  # fmt: skip
                rows = list(csv.reader(stream))
        finally:
            csv.field_size_limit(limit)
        kept = rows[: keep + 1]
        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as stream:
            csv.writer(stream).writerows(kept)
        self.count = max(len(kept) - 1, 0)

    def write(self, rejects: Sequence[Reject]) -> None:
        if not rejects:
            return
        if self.stream is None:
            exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
            # the raw row is written back byte for byte, even where it is not valid UTF-8
            self.stream = open(  # noqa: SIM115 (closed by close())
                self.path, "a", encoding="utf-8", errors="surrogateescape", newline=""
            )
            self.writer = csv.writer(self.stream)
            if not exists:
                raw = self.header if self.header is not None else ["raw"]
                self.writer.writerow(["row", "line", "declaration", "reason", *raw])
        for reject in rejects:
            self.writer.writerow(
                [reject.row, reject.line, reject.declaration or "", reject.reason, *reject.raw]
            )
            self.count += 1
        assert self.stream is not None
        self.stream.flush()
        os.fsync(self.stream.fileno())

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def rejects_of(
    group: Group, problems: dict[int, str], ident: str | None, culprit: int | None = None
) -> list[Reject]:
    """Every row of a rejected group: the failing row with its reason, the others pointing at
    it (``culprit``: a row elsewhere, when the group is rejected for another group's row)."""
    if culprit is None:
        culprit = min(problems) if problems else group.rows[0].number
    out = []
    for row in group.rows:
        reason = problems.get(row.number)
        if reason is None:
            reason = f"rejected with its declaration (see row {culprit})"
        out.append(Reject(row.number, row.line, ident, reason, tuple(row.raw)))
    return out
