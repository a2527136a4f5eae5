"""Regular expressions of `matches`: validated, compiled and matched here, for every backend.

A pattern is written in Python's syntax and means what Python's ``re.fullmatch`` makes of it
(the documented semantics), but it never runs on Python's backtracking engine, whose time can
grow exponentially with the text (``(a+)+$`` against a trader's description). It is parsed by
Python's own parser, translated into an equivalent pattern of RE2 -- a linear-time automaton
engine, the one DuckDB runs natively -- and matched by RE2 in the evaluator, in SQLite (a
function registered on connect) and in DuckDB (``regexp_full_match``); PostgreSQL gets the same
pattern in its ARE syntax where that is exact and safe (see :meth:`Regex.postgres`). A
translation whose backtracking is provably bounded runs on Python's ``re`` instead, which is
faster on short texts (:mod:`riskengine.semantics.regex_python`).

The translation spells out everything RE2 reads differently from Python: every class, literal
and Perl class (``\\d``, ``\\w``, ``\\s``) becomes an explicit set of code points computed from
the running Python's Unicode tables; a case-insensitive literal or class becomes the set of what
Python's ``re.IGNORECASE`` accepts for it; ``.`` is ``[^\\n]`` unless ``(?s)``; ``^``/``$`` at the
ends of the pattern are dropped (a full match is anchored); a Unicode word boundary ``\\b`` is
rewritten from its neighbours when they decide it. A construct without an exact linear-time
translation is rejected by :func:`compile_pattern` with a :class:`PatternError`, which ``check``
reports at the pattern (RE015 for a pattern Python cannot read, RE016 for one riskengine cannot
guarantee): backreferences, lookaround, conditional groups, atomic groups and possessive
quantifiers, a ``\\b`` whose neighbours do not decide it, ``$`` before the end, a repetition
count above :data:`MAX_REPEAT`, a compiled program above :data:`MAX_PROGRAM_SIZE` instructions.
"""

from __future__ import annotations

import array
import functools
import itertools
import re
import re._constants as sre
import re._parser as sre_parse
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import re2

#: The largest repetition count (``a{n}``, ``a{m,n}``): RE2's own limit.
MAX_REPEAT = 1000
#: The largest compiled program (RE2 instructions): the matching time per character of text
#: is bounded by it, so a pattern within it matches a 10,000-character text in milliseconds.
MAX_PROGRAM_SIZE = 20_000
#: Deepest nesting of groups, alternatives and repetitions.
MAX_NESTING = 50
#: PostgreSQL's ARE engine: its largest repetition count, and the largest program (as RE2
#: counts it) it runs in linear time without its automaton cache thrashing.
PG_MAX_REPEAT = 255
PG_MAX_PROGRAM_SIZE = 4_000

_MAXCODE = 0x10FFFF
_SURROGATES = re.compile("[\ud800-\udfff]")


class PatternError(Exception):
    """A pattern riskengine does not run: ``code`` is RE015 (Python cannot read it) or RE016
    (no exact linear-time translation); ``message`` says why, for a diagnostic."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


def _unsupported(what: str) -> PatternError:
    return PatternError("RE016", f"{what} cannot be matched in linear time")


_BOUNDARY = PatternError(
    "RE016",
    "a word boundary `\\b` or `\\B` whose neighbours do not decide it: riskengine rewrites it "
    "from a letter, digit or `_` on one side and a character, the start or end, or `.*` at the "
    "start or end on the other (as in `.*\\bword\\b.*`)",
)


# --- sets of code points ------------------------------------------------------------------

Ranges = tuple[tuple[int, int], ...]


def _normal(pairs: Iterable[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(pairs):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _from_codes(codes: Iterable[int]) -> Ranges:
    return _normal((c, c) for c in codes)


def _complement(a: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in a:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAXCODE:
        out.append((nxt, _MAXCODE))
    return tuple(out)


def _union(a: Ranges, b: Ranges) -> Ranges:
    return _normal((*a, *b))


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    return _complement(_union(_complement(a), _complement(b)))


def _minus(a: Ranges, b: Ranges) -> Ranges:
    if not (_canonical(a) and _canonical(b)):
        return _intersect(a, _complement(b))
    # one sweep over both (each sorted, disjoint, not adjacent): the same canonical ranges as
    # the complements above, without sorting thousands of ranges (case folding, surrogates)
    out: list[tuple[int, int]] = []
    j, nb = 0, len(b)
    for lo, hi in a:
        cur = lo
        while j < nb and b[j][1] < cur:
            j += 1
        k = j
        while k < nb and b[k][0] <= hi:
            blo, bhi = b[k]
            if blo > cur:
                out.append((cur, blo - 1))
            if bhi >= cur:
                cur = bhi + 1
            k += 1
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def _canonical(a: Ranges) -> bool:
    """Whether ``a`` is as :func:`_normal` writes ranges: each ``lo <= hi``, sorted, apart."""
    return all(lo <= hi for lo, hi in a) and all(x[1] + 1 < y[0] for x, y in itertools.pairwise(a))


def _contains(a: Ranges, c: int) -> bool:
    return any(lo <= c <= hi for lo, hi in a)


@functools.cache
def _every_character() -> str:
    codes = array.array("I", range(_MAXCODE + 1)).tobytes()
    return codes.decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be", "surrogatepass")


@functools.cache
def _python_class(escape: str) -> Ranges:
    """The code points Python's ``re`` matches with ``\\d``, ``\\s`` or ``\\w`` (Unicode)."""
    spans = re.finditer(f"{escape}+", _every_character())
    return tuple((mt.start(), mt.end() - 1) for mt in spans)


_ASCII_CLASSES: dict[Any, Ranges] = {
    sre.CATEGORY_DIGIT: ((48, 57),),
    sre.CATEGORY_SPACE: ((9, 13), (32, 32)),
    sre.CATEGORY_WORD: ((48, 57), (65, 90), (95, 95), (97, 122)),
}
_UNICODE_TESTS = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_WORD: r"\w",
}
_NEGATED = {
    sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT,
    sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE,
    sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
}


_CATEGORY_SOURCE = {
    sre.CATEGORY_DIGIT: r"\d",
    sre.CATEGORY_NOT_DIGIT: r"\D",
    sre.CATEGORY_SPACE: r"\s",
    sre.CATEGORY_NOT_SPACE: r"\S",
    sre.CATEGORY_WORD: r"\w",
    sre.CATEGORY_NOT_WORD: r"\W",
}


def _category(cat: Any, ascii_only: bool) -> Ranges:
    base = _NEGATED.get(cat, cat)
    if base not in _UNICODE_TESTS:
        raise _unsupported(f"the class {cat}")
    ranges = _ASCII_CLASSES[base] if ascii_only else _python_class(_UNICODE_TESTS[base])
    return _complement(ranges) if cat in _NEGATED else ranges


def _word(ascii_only: bool) -> Ranges:
    return _category(sre.CATEGORY_WORD, ascii_only)


@functools.cache
def _case_candidates() -> tuple[int, ...]:
    """Every code point whose case-insensitive match may differ from its case-sensitive one:
    the cased ones and their simple lower and upper cases (Python's own tables; a test checks
    over every code point that the others match exactly themselves)."""
    import _sre
    import re._compiler as sre_compile

    out: set[int] = set()
    for c in range(_MAXCODE + 1):
        if _sre.unicode_iscased(c):
            out.update((c, _sre.unicode_tolower(c)))
    for low, extra in getattr(sre_compile, "_EXTRA_CASES", {}).items():
        out.update((low, *extra))
    return tuple(sorted(out))


def _class_source(items: Sequence[tuple[Any, Any]]) -> str:
    """A Python class pattern (``[...]``) of parsed class items, to ask ``re`` itself."""
    parts: list[str] = []
    for op, av in items:
        if op is sre.NEGATE:
            parts.insert(0, "^")
        elif op is sre.LITERAL:
            parts.append(f"\\U{av:08x}")
        elif op is sre.RANGE:
            parts.append(f"\\U{av[0]:08x}-\\U{av[1]:08x}")
        elif op is sre.CATEGORY:
            parts.append(_CATEGORY_SOURCE[av])
        else:  # pragma: no cover - the parser builds no other class item
            raise _unsupported(f"the class item {op}")
    return "[" + "".join(parts) + "]"


@functools.cache
def _case_text() -> tuple[str, Ranges]:
    """The case candidates as one string (one character each, in order) and as ranges."""
    cands = _case_candidates()
    return "".join(map(chr, cands)), _from_codes(cands)


@functools.lru_cache(maxsize=4096)
def _ignoring_case(source: str, ascii_only: bool, sensitive: Ranges) -> Ranges:
    """What the class ``source`` matches under ``re.IGNORECASE``: its case-sensitive set
    ``sensitive``, corrected on the case candidates by asking Python's ``re``. A class matches
    exactly one character, so its matches in the string of every candidate are the candidates
    it matches (one scan instead of a ``fullmatch`` per candidate)."""
    rx = re.compile(source, re.IGNORECASE | (re.ASCII if ascii_only else 0))
    cands = _case_candidates()
    text, ranges = _case_text()
    yes = _from_codes(cands[mt.start()] for mt in rx.finditer(text))
    return _union(_minus(sensitive, ranges), yes)


# --- the translated pattern ------------------------------------------------------------------


@attrs.frozen
class Chars:
    """One character out of a set of code points (an empty set never matches)."""

    ranges: Ranges


@attrs.frozen
class Seq:
    items: tuple[Node, ...]


@attrs.frozen
class Alt:
    items: tuple[Node, ...]


@attrs.frozen
class Repeat:
    item: Node
    lo: int
    hi: int | None  # None: no upper bound


@attrs.frozen
class Assert:
    """A zero-width assertion RE2 reads exactly as Python: ``\\A``, ``\\z``, the multi-line
    ``(?m:^)`` and ``(?m:$)``, the ASCII word boundaries ``\\b`` and ``\\B``."""

    re2: str


Node = Chars | Seq | Alt | Repeat | Assert
EMPTY = Seq(())
NEVER = Chars(())
_ANY = ((0, _MAXCODE),)
_NOT_NEWLINE = ((0, 9), (11, _MAXCODE))


def _seq(items: Iterable[Node]) -> Node:
    flat: list[Node] = []
    for it in items:
        if it == NEVER:
            return NEVER
        flat.extend(it.items if isinstance(it, Seq) else (it,))
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def _alt(items: Iterable[Node]) -> Node:
    kept = [it for it in items if it != NEVER]
    if not kept:
        return NEVER
    return kept[0] if len(kept) == 1 else Alt(tuple(kept))


def _nullable(n: Node) -> bool:
    if isinstance(n, Chars):
        return False
    if isinstance(n, Seq):
        return all(_nullable(i) for i in n.items)
    if isinstance(n, Alt):
        return any(_nullable(i) for i in n.items)
    if isinstance(n, Repeat):
        return n.lo == 0 or _nullable(n.item)
    return True


def _split(n: Node, word: Ranges, left: bool, edge: bool) -> tuple[Node, Node]:
    """``n`` as (the strings ending -- or, right of a boundary, starting -- with a word
    character, the others). The empty string counts with the others when ``edge`` (nothing
    lies beyond ``n`` but the start or end of the text); otherwise a nullable ``n`` cannot be
    split here and this raises."""
    if isinstance(n, Chars):
        return Chars(_intersect(n.ranges, word)), Chars(_minus(n.ranges, word))
    if isinstance(n, Alt):
        parts = [_split(i, word, left, edge) for i in n.items]
        return _alt(p[0] for p in parts), _alt(p[1] for p in parts)
    if isinstance(n, Seq) and not n.items and edge:
        return NEVER, EMPTY
    if isinstance(n, Seq) and n.items:
        items = list(n.items)
        end = items[-1] if left else items[0]
        rest = items[:-1] if left else items[1:]
        if not rest:
            return _split(end, word, left, edge)
        if _nullable(end):
            raise _BOUNDARY
        w, o = _split(end, word, left, False)
        if left:
            return _seq([*rest, w]), _seq([*rest, o])
        return _seq([w, *rest]), _seq([o, *rest])
    if isinstance(n, Repeat) and n.hi != 0 and not _nullable(n.item):
        w, o = _split(n.item, word, left, edge)
        lo = 0 if n.lo == 0 else n.lo - 1
        hi = None if n.hi is None else n.hi - 1
        more = Repeat(n.item, lo, hi) if (lo, hi) != (0, 0) else EMPTY
        wn = _seq([more, w] if left else [w, more])
        on = _seq([more, o] if left else [o, more])
        if n.lo == 0:
            if not edge:
                raise _BOUNDARY
            on = _alt([EMPTY, on])
        return wn, on
    raise _BOUNDARY


def _nonempty(n: Node) -> Node:
    """The non-empty strings of ``n``."""
    if isinstance(n, Chars):
        return n
    if isinstance(n, Assert):
        return NEVER
    if isinstance(n, Alt):
        return _alt(_nonempty(i) for i in n.items)
    if isinstance(n, Seq):
        if not n.items:
            return NEVER
        head, rest = n.items[0], _seq(n.items[1:])
        if not _nullable(head):
            return n
        return _alt([_seq([_nonempty(head), rest]), _nonempty(rest)])
    if n.hi == 0:
        return NEVER
    more = Repeat(n.item, max(n.lo - 1, 0), None if n.hi is None else n.hi - 1)
    return _seq([_nonempty(n.item), more])


_EDGE = object()


class _Translator:
    """Python's parse tree of a pattern → :data:`Node`, exactly (or :class:`PatternError`)."""

    def __init__(self) -> None:
        self.depth = 0

    def sequence(
        self, items: Sequence[tuple[Any, Any]], flags: int, start: bool, end: bool
    ) -> Node:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise PatternError("RE016", f"groups nested deeper than {MAX_NESTING} levels")
        out: list[Any] = []
        last = len(items) - 1
        for k, (op, av) in enumerate(items):
            first_here, last_here = start and k == 0, end and k == last
            if op is sre.AT:
                out.append(self.anchor(av, flags, first_here, last_here))
            else:
                out.append(self.item(op, av, flags, first_here, last_here))
        node = self.boundaries(out, flags, start, end)
        self.depth -= 1
        return node

    def anchor(self, at: Any, flags: int, first: bool, last: bool) -> Node | tuple[str, bool, bool]:
        multi = bool(flags & sre.SRE_FLAG_MULTILINE)
        if at is sre.AT_BEGINNING_STRING or (at is sre.AT_BEGINNING and not multi):
            return EMPTY if first else Assert(r"\A")
        if at is sre.AT_END_STRING:
            return EMPTY if last else Assert(r"\z")
        if at is sre.AT_BEGINNING:  # multi-line: the start of the text is a line start
            return EMPTY if first else Assert("(?m:^)")
        if at is sre.AT_END:
            if last:  # the end of the text is the end of a line too
                return EMPTY
            if multi:
                return Assert("(?m:$)")
            raise _unsupported("`$` before the end of the pattern (write `\\n?` or `\\Z`)")
        if at in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY):
            return ("boundary", at is sre.AT_BOUNDARY, bool(flags & sre.SRE_FLAG_ASCII))
        raise _unsupported(f"the anchor {at}")  # pragma: no cover

    def boundaries(self, out: list[Any], flags: int, start: bool, end: bool) -> Node:
        """Rewrite each word boundary ``\\b`` / ``\\B`` from the neighbours that decide it
        (an ASCII ``\\b`` they do not decide stays RE2's own, which reads as Python's)."""
        k = 0
        while k < len(out):
            if not isinstance(out[k], tuple):
                k += 1
                continue
            _, change, ascii_only = out[k]
            try:
                lo_k, hi_k, node = self.boundary(out, k, change, ascii_only, start, end)
            except PatternError:
                if not (ascii_only and change):
                    raise
                lo_k, hi_k, node = k, k + 1, Assert(r"\b")
            out[lo_k:hi_k] = [node]
            k = lo_k
        return _seq(out)

    def boundary(
        self, out: list[Any], k: int, change: bool, ascii_only: bool, start: bool, end: bool
    ) -> tuple[int, int, Node]:
        left: Any = out[k - 1] if k > 0 else (_EDGE if start else None)
        right: Any = out[k + 1] if k + 1 < len(out) else (_EDGE if end else None)
        if left is None or right is None or isinstance(left, tuple) or isinstance(right, tuple):
            raise _BOUNDARY
        word = _word(ascii_only)
        lw: Node
        lo: Node
        rw: Node
        ro: Node
        left_edge = left is _EDGE or (start and k == 1)
        right_edge = right is _EDGE or (end and k + 2 == len(out))
        if left is _EDGE:
            lw, lo = NEVER, EMPTY
        else:
            lw, lo = _split(left, word, True, left_edge)
        if right is _EDGE:
            rw, ro = NEVER, EMPTY
        else:
            rw, ro = _split(right, word, False, right_edge)
        if change:
            node = _alt([_seq([lw, ro]), _seq([lo, rw])])
        else:
            # Python's `\B` never matches in an empty text
            others = _seq([lo, ro])
            node = _alt([_seq([lw, rw]), _nonempty(others) if left_edge and right_edge else others])
        return (k - 1 if left is not _EDGE else k), (k + 2 if right is not _EDGE else k + 1), node

    def item(self, op: Any, av: Any, flags: int, first: bool, last: bool) -> Node:
        icase = bool(flags & sre.SRE_FLAG_IGNORECASE)
        ascii_only = bool(flags & sre.SRE_FLAG_ASCII)
        if op is sre.LITERAL or op is sre.NOT_LITERAL:
            items = (
                [(sre.LITERAL, av)]
                if op is sre.LITERAL
                else [(sre.NEGATE, None), (sre.LITERAL, av)]
            )
            return self.chars(items, icase, ascii_only)
        if op is sre.IN:
            return self.chars(av, icase, ascii_only)
        if op is sre.ANY:
            return Chars(_ANY if flags & sre.SRE_FLAG_DOTALL else _NOT_NEWLINE)
        if op is sre.SUBPATTERN:
            _group, add, remove, sub = av
            return self.sequence(sub, (flags | add) & ~remove, first, last)
        if op is sre.BRANCH:
            self.depth += 1
            node = _alt(self.sequence(b, flags, first, last) for b in av[1])
            self.depth -= 1
            return node
        if op is sre.MAX_REPEAT or op is sre.MIN_REPEAT:
            lo, hi, sub = av
            hi_n = None if hi is sre.MAXREPEAT else int(hi)
            if lo > MAX_REPEAT or (hi_n is not None and hi_n > MAX_REPEAT):
                raise PatternError("RE016", f"a repetition count above {MAX_REPEAT} (RE2's limit)")
            return Repeat(self.sequence(sub, flags, False, False), int(lo), hi_n)
        what = {
            sre.GROUPREF: "a backreference",
            sre.GROUPREF_EXISTS: "a conditional group `(?(…)…)`",
            sre.ASSERT: "a lookahead or lookbehind `(?=…)`, `(?<=…)`",
            sre.ASSERT_NOT: "a negative lookahead or lookbehind `(?!…)`, `(?<!…)`",
            sre.ATOMIC_GROUP: "an atomic group `(?>…)`",
            sre.POSSESSIVE_REPEAT: "a possessive quantifier `*+`, `++`, `?+`",
        }.get(op, f"the construct {op}")
        raise _unsupported(what)

    def chars(self, items: Sequence[tuple[Any, Any]], icase: bool, ascii_only: bool) -> Chars:
        ranges: Ranges = ()
        negate = False
        for op, av in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                ranges = _union(ranges, ((av, av),))
            elif op is sre.RANGE:
                ranges = _union(ranges, ((av[0], av[1]),))
            elif op is sre.CATEGORY:
                ranges = _union(ranges, _category(av, ascii_only))
            else:  # pragma: no cover
                raise _unsupported(f"the class item {op}")
        if icase:
            positive = [it for it in items if it[0] is not sre.NEGATE]
            ranges = _ignoring_case(_class_source(positive), ascii_only, ranges)
        return Chars(_complement(ranges) if negate else ranges)


# --- output: RE2 and PostgreSQL syntax ------------------------------------------------------


def _re2_code(c: int) -> str:
    if 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122:
        return chr(c)
    return f"\\x{{{c:X}}}"


def _without_surrogates(ranges: Ranges) -> Ranges:
    return _minus(ranges, ((0xD800, 0xDFFF),))


def _re2_chars(ranges: Ranges) -> str:
    ranges = _without_surrogates(ranges)
    if not ranges:
        return "[^\\x00-\\x{10FFFF}]"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        c = ranges[0][0]
        return chr(c) if _re2_code(c) == chr(c) else f"\\x{{{c:X}}}"
    body = "".join(
        _re2_code(lo) if lo == hi else f"{_re2_code(lo)}-{_re2_code(hi)}" for lo, hi in ranges
    )
    return f"[{body}]"


def _quant(lo: int, hi: int | None) -> str:
    if (lo, hi) == (0, None):
        return "*"
    if (lo, hi) == (1, None):
        return "+"
    if (lo, hi) == (0, 1):
        return "?"
    if hi is None:
        return f"{{{lo},}}"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def _emit(n: Node, chars: Any, assertion: Any, max_repeat: int) -> str:
    if isinstance(n, Chars):
        return str(chars(n.ranges))
    if isinstance(n, Assert):
        return str(assertion(n))
    if isinstance(n, Seq):
        return "".join(
            f"(?:{_emit(i, chars, assertion, max_repeat)})"
            if isinstance(i, Alt)
            else _emit(i, chars, assertion, max_repeat)
            for i in n.items
        )
    if isinstance(n, Alt):
        return "|".join(_emit(i, chars, assertion, max_repeat) for i in n.items)
    if n.lo > max_repeat or (n.hi is not None and n.hi > max_repeat):
        raise PatternError("RE016", f"a repetition count above {max_repeat} (RE2's limit)")
    inner = _emit(n.item, chars, assertion, max_repeat)
    return f"(?:{inner}){_quant(n.lo, n.hi)}"


def _pg_code(c: int) -> str:
    if 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122:
        return chr(c)
    return f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}"


def _pg_chars(ranges: Ranges) -> str:
    # PostgreSQL text never holds NUL nor surrogates
    ranges = _minus(_without_surrogates(ranges), ((0, 0),))
    if not ranges:
        raise _Unsupported("a class that matches nothing")
    body = "".join(
        _pg_code(lo) if lo == hi else f"{_pg_code(lo)}-{_pg_code(hi)}" for lo, hi in ranges
    )
    return f"[{body}]"


class _Unsupported(Exception):
    """This pattern has no exact PostgreSQL translation (the reason is the message)."""


def _pg_assert(n: Assert) -> str:
    raise _Unsupported(f"the assertion {n.re2} reads differently in PostgreSQL")


def _re2_assert(n: Assert) -> str:
    return n.re2


# --- the compiled pattern -------------------------------------------------------------------

_BOTH = re2._re2.RE2.Anchor.ANCHOR_BOTH


def _options() -> Any:
    opts = re2.Options()
    opts.never_capture = True
    opts.log_errors = False
    return opts


@attrs.frozen(eq=False)  # one object per pattern (compile_pattern caches): compared by identity
class Regex:
    """A checked pattern: ``source`` as written, ``re2`` its RE2 translation (what DuckDB and
    every Python-side backend runs); calling it is ``re.fullmatch(source, text) is not None``
    in linear time."""

    source: str
    re2: str
    program_size: int
    tree: Node = attrs.field(repr=False)
    #: RE2's match of a text (always linear).
    re2_match: Callable[[str], bool] = attrs.field(repr=False)
    #: the fastest linear match: Python's ``re`` where proven linear
    #: (:mod:`riskengine.semantics.regex_python`), else ``re2_match``.
    match: Callable[[str], bool] = attrs.field(repr=False)

    def __call__(self, text: str) -> bool:
        return self.match(text)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return compile_pattern, (self.source,)

    def postgres(self) -> tuple[str | None, str]:
        """The pattern in PostgreSQL's ARE syntax, anchored at both ends, or ``None`` and the
        reason it is not pushed down (the backtest then takes its Python fallback)."""
        return _postgres(self)


@functools.lru_cache(maxsize=1024)
def _postgres(rx: Regex) -> tuple[str | None, str]:
    if rx.program_size > PG_MAX_PROGRAM_SIZE:
        return None, (
            f"pattern {rx.source!r} compiles to {rx.program_size} instructions; PostgreSQL's "
            f"engine is not guaranteed linear above {PG_MAX_PROGRAM_SIZE}"
        )
    try:
        body = _emit(rx.tree, _pg_chars, _pg_assert, PG_MAX_REPEAT)
    except (_Unsupported, PatternError) as exc:
        return None, f"pattern {rx.source!r}: {exc} on PostgreSQL"
    return f"^(?:{body})$", ""


@functools.lru_cache(maxsize=1024)
def compile_pattern(source: str) -> Regex:
    """The pattern ``source`` checked and compiled; :class:`PatternError` when riskengine does
    not run it. Never raises anything else."""
    try:
        with warnings.catch_warnings():  # "possible nested set": the parse is what it means
            warnings.simplefilter("ignore")
            parsed = sre_parse.parse(source)
    except re.error as exc:
        raise PatternError("RE015", str(exc)) from None
    except OverflowError:
        raise PatternError(
            "RE016", f"a repetition count above {MAX_REPEAT} (RE2's limit)"
        ) from None
    except RecursionError:
        raise PatternError("RE016", f"groups nested deeper than {MAX_NESTING} levels") from None
    flags = parsed.state.flags
    if flags & sre.SRE_FLAG_LOCALE:  # pragma: no cover - the parser refuses it for text
        raise PatternError("RE015", "the locale flag `(?L)` is for bytes patterns")
    try:
        tree = _Translator().sequence(list(parsed), flags, True, True)
        text = _emit(tree, _re2_chars, _re2_assert, MAX_REPEAT)
    except RecursionError:
        raise PatternError("RE016", f"groups nested deeper than {MAX_NESTING} levels") from None
    try:
        rx = re2._re2.RE2(text.encode(), _options())
    except Exception as exc:  # pragma: no cover - RE2 raises on a pattern it refuses
        raise PatternError("RE016", f"RE2 cannot compile it: {exc}") from None
    if not rx.ok():
        err = rx.error()
        err = err.decode() if isinstance(err, bytes) else str(err)
        if "repetition" in err:
            raise PatternError(
                "RE016", f"nested repetitions above {MAX_REPEAT} in all (RE2's limit)"
            )
        raise PatternError("RE016", f"too large to compile ({err})")
    size = int(rx.ProgramSize())
    if size > MAX_PROGRAM_SIZE:
        raise PatternError(
            "RE016", f"too large: {size} instructions compiled, at most {MAX_PROGRAM_SIZE}"
        )
    from riskengine.semantics.regex_python import python_matcher

    match = _re2_matcher(rx)
    return Regex(source, text, size, tree, match, python_matcher(tree) or match)


def _re2_matcher(rx: Any) -> Callable[[str], bool]:
    run = rx.Match

    def match(text: str) -> bool:
        try:
            data = text.encode()
        except UnicodeEncodeError:  # lone surrogates read as U+FFFD
            data = _SURROGATES.sub("\ufffd", text).encode()
        return bool(run(_BOTH, data, 0, len(data))[0][0] >= 0)

    return match


def pattern_error(source: str) -> PatternError | None:
    """Why ``source`` cannot be used with `matches`, or ``None`` when it can."""
    try:
        compile_pattern(source)
    except PatternError as exc:
        return exc
    return None


def fullmatch(pattern: str, text: str) -> bool:
    """``re.fullmatch(pattern, text) is not None``, in linear time (``pattern`` checked)."""
    return compile_pattern(pattern)(text)


def sql_fullmatch(pattern: str | None, value: str | None) -> int | None:
    """SQLite's ``re_fullmatch(pattern, value)``: 1 or 0, NULL when either is NULL."""
    if pattern is None or value is None:
        return None
    return int(compile_pattern(pattern)(value))
