"""The semantics of the profile language, in one place: what every backend reads.

Every backend -- the generated Python evaluator, its explaining path, the SQL compiler of
backtests and the static checks -- takes the rules of the language from this package: the
operators and functions, the types, the numeric rule for non-finite values, regular
expressions, regional fill choice, interval analysis, history arithmetic and the limits a
profile must stay within so that every backend can run it. See docs/architecture.md.
"""
