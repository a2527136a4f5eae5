"""Syntax: the grammar in grammar/profile.lark, the parser and the tree → model builder."""

from riskengine.syntax.parser import ParseResult, parse, parse_file, parse_source, read_source

__all__ = ["ParseResult", "parse", "parse_file", "parse_source", "read_source"]
