"""A fast driver for lark's LALR tables: one-regex tokenizer + a tight shift/reduce loop.

lark's own lexer and parser loop cost about 10 µs per token in Python, which alone would
spend the whole budget for 1,000 profiles. This module reuses lark's *tables and callbacks*
(the grammar in grammar/profile.lark stays the single source of truth, and the model builder
is the same embedded transformer) but tokenizes with one compiled regular expression and
resolves context-dependent terminals (keywords vs names, CODE vs NUMBER, `-` as operator or
sign) from the current parser state, the way lark's contextual lexer does.

It only handles valid input. On any problem it returns ``None`` and the caller re-parses with
lark's standard machinery, which produces lark's exceptions (and our friendly diagnostics).
"""

from __future__ import annotations

import re
from typing import Any

import lark
from lark import Lark, Token

_MASTER = re.compile(
    r"""
    [\ \t\f\r\n]*                            # leading white space (the grammar's WS), skipped
    (?:
    (?P<comment>\#[^\n]*)
  | (?P<string>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|"(?:[^"\\\n]|\\.)*")
  | (?P<pnum>[0-9A-Za-zА-ЯІЇЄҐа-яіїєґ]{1,4}/[0-9]{1,3}/[0-9]{2,5}/[0-9]{1,6}-[0-9]{1,3})
  | (?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})
  | (?P<num>[0-9]+(?:\.[0-9]+)?)
  | (?P<word>[^\W\d]\w*)
  | (?P<op>==|!=|<=|>=|\.\.|[<>+\-*/=.(){}\[\]:,])
  | (?P<eof>\Z)
    )
    """,
    re.VERBOSE,
)
_CODE_WORD = re.compile(r"[A-Z][A-Z0-9]*[0-9][A-Z0-9]*\Z")
_SCOPES = frozenset(("declaration", "item", "region"))
_NOTE_KEYS = frozenset(("threat", "basis", "causes", "damage", "measures"))
_COMPARE = frozenset(("==", "!=", "<=", ">=", "<", ">"))


class FastParser:
    """Parses valid files with lark's LALR table; returns None when lark must take over."""

    def __init__(self, lark_parser: Lark):
        inner = lark_parser.parser.parser.parser  # ParsingFrontend → LALR_Parser → _Parser
        table = inner.parse_table
        shift = lark.parsers.lalr_analysis.Shift
        callbacks = inner.callbacks
        # Actions as plain tuples: (True, next_state) to shift, (False, (size, origin, callback))
        # to reduce, so the loop never hashes lark's Rule objects. Symbol names as plain
        # strings: lark's are often Tokens, whose __eq__ (Python code) every lookup would call.
        rules: dict[int, tuple[int, str, Any]] = {}
        self.states: dict[Any, dict[str, tuple[bool, Any]]] = {}
        for state, actions in table.states.items():
            row: dict[str, tuple[bool, Any]] = {}
            for term, (act, arg) in actions.items():
                if act is shift:
                    row[str(term)] = (True, arg)
                else:
                    info = rules.get(id(arg))
                    if info is None:
                        # `?rule` with one symbol just passes its child up: no callback needed.
                        passthrough = (
                            arg.options.expand1 and len(arg.expansion) == 1 and not arg.alias
                        )
                        info = rules[id(arg)] = (
                            len(arg.expansion),
                            str(arg.origin.name),
                            None if passthrough else callbacks[arg],
                        )
                    row[str(term)] = (False, info)
            self.states[state] = row
        self.start_state = table.start_states["start"]
        self.end_state = table.end_states["start"]
        self.literals: dict[str, str] = {
            str(t.pattern.value): str(t.name)
            for t in lark_parser.terminals
            if isinstance(t.pattern, lark.lexer.PatternStr)
        }
        # Anonymous terminals (keywords, punctuation) never reach the builder: lark's child
        # filter drops them, so the loop pushes a marker instead of building a Token. A terminal
        # is kept when some rule uses it unfiltered (named terminals such as NAME or TRUE).
        self.named = frozenset(
            str(sym.name)
            for rule in lark_parser.rules
            for sym in rule.expansion
            if sym.is_term and not getattr(sym, "filter_out", False)
        )

    def parse(self, text: str, comments: list[Token]) -> Any:
        states = self.states
        literals = self.literals
        named = self.named
        end_state = self.end_state
        state_stack = [self.start_state]
        value_stack: list[Any] = []
        line = 1
        line_start = 0
        pos = 0
        match = _MASTER.match
        tok: Token | None = None
        while True:
            mt = match(text, pos)
            if mt is None:
                return None
            kind: str = mt.lastgroup or "eof"
            start = mt.start(kind)
            nl_at = text.rfind("\n", pos, start)
            if nl_at >= 0:
                line += text.count("\n", pos, start)
                line_start = nl_at + 1
            pos = start
            if kind == "eof":
                ttype = "$END"
                col = pos - line_start + 1
                tok = Token("$END", "", pos, line, col, line, col)
            else:
                value = mt.group(kind)
                end = mt.end()
                if kind == "comment":
                    col = pos - line_start + 1
                    comments.append(
                        Token("COMMENT", value, pos, line, col, line, col + len(value), end)
                    )
                    pos = end
                    continue
                accepts = states[state_stack[-1]]
                if kind == "word":
                    if value in literals and literals[value] in accepts:
                        ttype = literals[value]
                    elif value in _SCOPES and "SCOPE" in accepts:
                        ttype = "SCOPE"
                    elif value in _NOTE_KEYS and "NOTE_KEY" in accepts:
                        ttype = "NOTE_KEY"
                    elif "CODE" in accepts and _CODE_WORD.match(value):
                        ttype = "CODE"
                    else:
                        ttype = "NAME"
                elif kind == "num":
                    if "." not in value and "CODE" in accepts:
                        ttype = "CODE"
                    else:
                        ttype = "NUMBER"
                elif kind == "op":
                    if value in _COMPARE:
                        ttype = "COMPARE"
                    elif value == "+" or (value == "-" and "ADD" in accepts):
                        ttype = "ADD"
                    elif value == "*" or value == "/":
                        ttype = "MUL"
                    else:
                        ttype = literals[value]
                elif kind == "string":
                    ttype = "STRING"
                elif kind == "date":
                    ttype = "DATE"
                else:
                    ttype = "PROFILE_NUMBER"
                col = pos - line_start + 1
                nl = value.count("\n") if kind == "string" else 0
                if nl:
                    end_line = line + nl
                    end_col = end - (pos + value.rindex("\n") + 1) + 1
                else:
                    end_line = line
                    end_col = col + len(value)
                tok = (
                    Token(ttype, value, pos, line, col, end_line, end_col, end)
                    if ttype in named
                    else None
                )
                if nl:
                    line = end_line
                    line_start = pos + value.rindex("\n") + 1
                pos = end
            # ---- feed the token: reduce as often as needed, then shift (or accept at the end)
            while True:
                action = states[state_stack[-1]].get(ttype)
                if action is None:
                    return None
                is_shift, arg = action
                if is_shift:
                    if ttype == "$END":
                        return None
                    state_stack.append(arg)
                    value_stack.append(tok)
                    break
                size, origin, callback = arg
                if callback is None:  # single-child pass-through: the value stays in place
                    state_stack[-1] = states[state_stack[-2]][origin][1]
                    continue
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                value_stack.append(callback(children))
                state_stack.append(states[state_stack[-1]][origin][1])
                if ttype == "$END" and state_stack[-1] == end_state:
                    return value_stack[-1]
