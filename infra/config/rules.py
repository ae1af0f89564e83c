"""The rule language: parse ``when`` text into a small, typed syntax tree, and check it.

It is part of the config contract (a stack whose rule does not parse does not load), so it sits
in ``infra.config`` below the planner; ``policies`` evaluates the trees and re-exports the names.

A rule condition reads like the sentence a person would say::

    predicted(cpu, p90) > 80% within 30m
    current(cpu) > 90% for 5m
    predicted(rps, p95) > 1.5 * current(rps) within 1h
    during(campaign) and not current(latency) < 200ms

Parsing uses lark (LALR, so parsing is linear in the rule's length and cannot hang). Every
error is a :class:`RuleError` carrying the line and column inside the rule text; syntax errors
say which tokens were expected, in words. :func:`check_rule` then checks the tree against a
pool's metrics and the forecast's quantiles, so a rule naming an unknown metric, an unknown
quantile or a unit that does not fit its metric is refused when the config is loaded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, TypeAlias

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from infra.config._errors import UserError

if TYPE_CHECKING:
    from infra.config._model import MetricSpec

__all__ = [
    "MAX_RULE_DEPTH",
    "MAX_RULE_LENGTH",
    "And",
    "Arithmetic",
    "Comparison",
    "Condition",
    "Current",
    "During",
    "Not",
    "Or",
    "Predicted",
    "Quantity",
    "RuleError",
    "RuleSyntaxError",
    "Value",
    "check_rule",
    "comparisons",
    "metric_terms",
    "parse_rule",
    "unit_factor",
]

logger = logging.getLogger(__name__)

MAX_RULE_LENGTH = 4000
"""Longest rule text accepted (the config's ``RuleSpec.when`` has the same limit)."""

MAX_RULE_DEPTH = 40
"""Deepest nesting of parentheses / ``not`` / operators accepted; keeps evaluation shallow."""

TIME_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400}
"""Units a duration (``within``/``for``) may carry, in seconds."""

# Which written units fit a metric of each unit, and the factor into the metric's own unit.
# A bare number is always read in the metric's own unit.
_METRIC_UNITS: dict[str, dict[str, float]] = {
    "percent": {"%": 1.0},
    "ratio": {"%": 0.01},
    "rps": {"rps": 1.0},
    "ms": {"ms": 1.0, "s": 1000.0},
    "count": {},
    "bytes_per_second": {},
}

_GRAMMAR = r"""
?start: disj

?disj: conj (_OR conj)*
?conj: neg (_AND neg)*
?neg: _NOT neg -> not_
    | atom
?atom: comparison
     | _DURING _LPAR NAME _RPAR -> during
     | _LPAR disj _RPAR

comparison: sum COMPARATOR sum window*
window: WITHIN QUANTITY
      | FOR QUANTITY

?sum: product (ADDOP product)*
?product: factor (MULOP factor)*
?factor: QUANTITY -> quantity
       | _PREDICTED _LPAR NAME _COMMA NAME _RPAR -> predicted
       | _CURRENT _LPAR NAME _RPAR -> current

_OR: "or"
_AND: "and"
_NOT: "not"
_DURING: "during"
_PREDICTED: "predicted"
_CURRENT: "current"
WITHIN: "within"
FOR: "for"
_LPAR: "("
_RPAR: ")"
_COMMA: ","
COMPARATOR: ">=" | "<=" | ">" | "<"
ADDOP: "+" | "-"
MULOP: "*" | "/"
QUANTITY: /(?:\d+(?:\.\d+)?|\.\d+)(?:[ \t]*(?:%|rps|ms|s|m|h|d)(?![A-Za-z0-9_]))?/
NAME: /[A-Za-z][A-Za-z0-9_\-]*/

%import common.WS
%ignore WS
"""

# Terminal names as a person would say them, for "expected ..." messages.
_WORDS: dict[str, str] = {
    "_OR": "'or'",
    "_AND": "'and'",
    "_NOT": "'not'",
    "_DURING": "'during(...)'",
    "_PREDICTED": "'predicted(...)'",
    "_CURRENT": "'current(...)'",
    "WITHIN": "'within'",
    "FOR": "'for'",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "COMPARATOR": "a comparison (>, >=, <, <=)",
    "ADDOP": "'+' or '-'",
    "MULOP": "'*' or '/'",
    "QUANTITY": "a number such as 80%, 1.5 or 30m",
    "NAME": "a name",
    "$END": "the end of the rule",
}
_WORD_ORDER = list(_WORDS)

_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)[ \t]*(%|rps|ms|s|m|h|d)?$")
_QUANTILE = re.compile(r"^p(\d{1,2})$")


# --------------------------------------------------------------------------- errors


class RuleError(UserError, ValueError):
    """A rule cannot be used. ``line``/``column`` are 1-based positions inside the rule text.

    :param message: what is wrong, in words.
    :param line: line in the rule text (1 for one-line rules).
    :param column: column in the rule text.
    """

    def __init__(self, message: str, *, line: int = 1, column: int = 1) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(f"line {line}, column {column}: {message}")


class RuleSyntaxError(RuleError):
    """The text is not a sentence of the rule language. ``expected`` lists what would fit, in words."""

    def __init__(
        self, message: str, *, line: int = 1, column: int = 1, expected: tuple[str, ...] = ()
    ) -> None:
        self.expected = expected
        super().__init__(message, line=line, column=column)


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Quantity:
    """A written number with its optional unit, e.g. ``80%`` (80, "%") or ``1.5`` (1.5, None)."""

    value: float
    unit: str | None
    line: int
    column: int


@dataclass(frozen=True)
class Predicted:
    """``predicted(metric, pNN)``: a forecast quantile curve."""

    metric: str
    quantile: int
    line: int
    column: int


@dataclass(frozen=True)
class Current:
    """``current(metric)``: recent observations of a metric."""

    metric: str
    line: int
    column: int


@dataclass(frozen=True)
class Arithmetic:
    """``left <op> right`` with op one of ``+ - * /``."""

    op: Literal["+", "-", "*", "/"]
    left: Value
    right: Value
    line: int
    column: int


Value: TypeAlias = Quantity | Predicted | Current | Arithmetic


@dataclass(frozen=True)
class Comparison:
    """``left <op> right [within D] [for D]``.

    :param within: horizon for predicted terms (None: the forecast's horizon).
    :param for_: how long current terms must have held (None: the latest observation).
    """

    left: Value
    op: Literal[">", ">=", "<", "<="]
    right: Value
    within: timedelta | None
    for_: timedelta | None
    line: int
    column: int

    @property
    def predictive(self) -> bool:
        """True when a side reads a forecast."""
        return any(isinstance(t, Predicted) for t in metric_terms(self))


@dataclass(frozen=True)
class During:
    """``during(event)``: a calendar event is in effect now."""

    event: str
    line: int
    column: int


@dataclass(frozen=True)
class Not:
    operand: Condition
    line: int
    column: int


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]
    line: int
    column: int


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]
    line: int
    column: int


Condition: TypeAlias = Comparison | During | Not | And | Or


# --------------------------------------------------------------------------- parsing


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _words(expected: Collection[str]) -> tuple[str, ...]:
    known = [name for name in _WORD_ORDER if name in expected]
    unknown = sorted(name for name in expected if name not in _WORDS)
    return tuple(_WORDS[name] for name in known) + tuple(unknown)


def _position(token: Token) -> tuple[int, int]:
    return int(token.line or 1), int(token.column or 1)


def _duration(token: Token) -> timedelta:
    quantity = _quantity(token)
    if quantity.unit not in TIME_UNITS:
        written = f"{quantity.value:g}{quantity.unit or ''}"
        raise RuleError(
            f"{written!r} is not a duration; write it with s, m, h or d (e.g. 30m)",
            line=quantity.line,
            column=quantity.column,
        )
    return timedelta(seconds=quantity.value * TIME_UNITS[quantity.unit])


def _quantity(token: Token) -> Quantity:
    match = _QUANTITY.match(str(token))
    line, column = _position(token)
    if match is None:  # the lexer's pattern and this one agree; kept as a loud guard
        raise RuleError(f"cannot read the number {str(token)!r}", line=line, column=column)
    return Quantity(float(match.group(1)), match.group(2), line, column)


@v_args(meta=True)
class _ToAst(Transformer[Token, Condition]):
    """Lark parse tree -> the frozen dataclasses above."""

    def quantity(self, meta: object, children: list[Token]) -> Quantity:
        return _quantity(children[0])

    def predicted(self, meta: object, children: list[Token]) -> Predicted:
        metric, quantile = children
        match = _QUANTILE.match(str(quantile))
        line, column = _position(quantile)
        if match is None or not 1 <= int(match.group(1)) <= 99:
            raise RuleError(
                f"quantile {str(quantile)!r} must be written p1 to p99, e.g. p90",
                line=line,
                column=column,
            )
        mline, mcolumn = _position(metric)
        return Predicted(str(metric), int(match.group(1)), mline, mcolumn)

    def current(self, meta: object, children: list[Token]) -> Current:
        line, column = _position(children[0])
        return Current(str(children[0]), line, column)

    def _chain(self, children: list[Value | Token]) -> Value:
        result = children[0]
        assert not isinstance(result, Token)
        if len(children) // 2 > MAX_RULE_DEPTH:
            # A chain of operators becomes a deep tree; evaluation walks it recursively.
            op = children[1]
            assert isinstance(op, Token)
            raise RuleError(
                f"more than {MAX_RULE_DEPTH} arithmetic operators in a row; simplify the expression",
                line=op.line or 1,
                column=op.column or 1,
            )
        for index in range(1, len(children), 2):
            op = children[index]
            right = children[index + 1]
            assert isinstance(op, Token) and not isinstance(right, Token)
            result = Arithmetic(str(op), result, right, *_position(op))  # type: ignore[arg-type]
        return result

    def sum(self, meta: object, children: list[Value | Token]) -> Value:
        return self._chain(children)

    def product(self, meta: object, children: list[Value | Token]) -> Value:
        return self._chain(children)

    def window(self, meta: object, children: list[Token]) -> tuple[str, timedelta]:
        keyword, amount = children
        return str(keyword), _duration(amount)

    def comparison(self, meta: object, children: list[object]) -> Comparison:
        left, op, right, *windows = children
        assert isinstance(op, Token)
        line, column = _position(op)
        within: timedelta | None = None
        for_: timedelta | None = None
        for window in windows:
            assert isinstance(window, tuple)
            keyword, amount = window
            if keyword == "within":
                if within is not None:
                    raise RuleError("'within' is given twice", line=line, column=column)
                within = amount
            else:
                if for_ is not None:
                    raise RuleError("'for' is given twice", line=line, column=column)
                for_ = amount
        return Comparison(left, str(op), right, within, for_, line, column)  # type: ignore[arg-type]

    def during(self, meta: object, children: list[Token]) -> During:
        return During(str(children[0]), *_position(children[0]))

    def not_(self, meta: object, children: list[Condition]) -> Not:
        line = int(getattr(meta, "line", 1) or 1)
        column = int(getattr(meta, "column", 1) or 1)
        return Not(children[0], line, column)

    def conj(self, meta: object, children: list[Condition]) -> And:
        return And(tuple(children), children[0].line, children[0].column)

    def disj(self, meta: object, children: list[Condition]) -> Or:
        return Or(tuple(children), children[0].line, children[0].column)


def _depth(tree: Tree[Token]) -> int:
    """Depth of the parse tree, computed without recursion (the tree may be deep)."""
    deepest = 0
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children)
    return deepest


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def parse_rule(text: str) -> Condition:
    """Parse a rule's ``when`` text into a :class:`Condition`.

    :param text: the rule text, at most :data:`MAX_RULE_LENGTH` characters.
    :raises RuleSyntaxError: the text is not in the language (with line, column, expected tokens).
    :raises RuleError: the text parses but says something impossible (a duration without a time
        unit, a malformed quantile, nesting deeper than :data:`MAX_RULE_DEPTH`).
    """
    if not isinstance(text, str):
        raise RuleError(f"a rule must be text, got {type(text).__name__}")
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(
            f"the rule is {len(text)} characters long; rules are limited to {MAX_RULE_LENGTH}"
        )
    if not text.strip():
        raise RuleSyntaxError(
            "the rule is empty", expected=_words({"_PREDICTED", "_CURRENT", "_DURING", "_NOT"})
        )
    return _parse(text)


@lru_cache(maxsize=1024)
def _parse(text: str) -> Condition:
    # Cached: the planner evaluates the same few rule texts every cycle, and the trees are frozen.
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(error, text) from None
    if _depth(tree) > MAX_RULE_DEPTH:
        raise RuleError(
            f"the rule nests too deeply (more than {MAX_RULE_DEPTH} levels); split it into simpler rules"
        )
    try:
        result = _ToAst().transform(tree)
    except Exception as error:  # lark wraps errors raised in callbacks in VisitError
        cause = getattr(error, "orig_exc", error)
        if isinstance(cause, RuleError):
            raise cause from None
        raise
    if isinstance(result, Quantity | Predicted | Current | Arithmetic):
        raise RuleSyntaxError(
            "a rule must compare values, e.g. 'current(cpu) > 90%'",
            expected=_words({"COMPARATOR"}),
            line=result.line,
            column=result.column,
        )
    return result


def _syntax_error(error: UnexpectedInput, text: str) -> RuleSyntaxError:
    line = int(getattr(error, "line", -1) or -1)
    column = int(getattr(error, "column", -1) or -1)
    if line < 1 or column < 1:
        line, column = _end_position(text)
    if isinstance(error, UnexpectedCharacters):
        expected = _words(error.allowed or set())
        at = error.pos_in_stream
        found = text[at] if at is not None and 0 <= at < len(text) else "?"
        what = f"unexpected character {found!r}"
    elif isinstance(error, UnexpectedToken):
        expected = _words(error.expected or set())
        token = error.token
        if token.type == "$END":
            what = "the rule ends too early"
            line, column = _end_position(text)
        else:
            what = f"unexpected {str(token)!r}"
    elif isinstance(error, UnexpectedEOF):
        expected = _words(error.expected or [])
        what = "the rule ends too early"
        line, column = _end_position(text)
    else:  # pragma: no cover - lark has no other UnexpectedInput kinds
        expected, what = (), "cannot parse the rule"
    message = what + (f"; expected {_or_list(expected)}" if expected else "")
    return RuleSyntaxError(message, line=line, column=column, expected=expected)


def _or_list(words: tuple[str, ...]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


# --------------------------------------------------------------------------- walking and checking


def _values(value: Value) -> Iterator[Value]:
    yield value
    if isinstance(value, Arithmetic):
        yield from _values(value.left)
        yield from _values(value.right)


def metric_terms(comparison: Comparison) -> list[Predicted | Current]:
    """The ``predicted``/``current`` terms of a comparison, left to right."""
    return [
        v
        for side in (comparison.left, comparison.right)
        for v in _values(side)
        if isinstance(v, Predicted | Current)
    ]


def comparisons(condition: Condition) -> Iterator[Comparison]:
    """Every comparison in a condition, left to right."""
    if isinstance(condition, Comparison):
        yield condition
    elif isinstance(condition, Not):
        yield from comparisons(condition.operand)
    elif isinstance(condition, And | Or):
        for operand in condition.operands:
            yield from comparisons(operand)


def unit_factor(unit: str | None, metric_unit: str) -> float | None:
    """Factor turning a number written with ``unit`` into ``metric_unit``; None if it does not fit."""
    if unit is None:
        return 1.0
    return _METRIC_UNITS.get(metric_unit, {}).get(unit)


def check_rule(
    condition: Condition,
    *,
    metrics: Mapping[str, MetricSpec] | None = None,
    quantiles: Collection[int] | None = None,
) -> None:
    """Check a parsed rule against the pool it belongs to.

    :param condition: the parsed rule.
    :param metrics: the pool's metrics (name -> spec); None skips the metric and unit checks.
    :param quantiles: the percentiles forecasts carry; None skips the quantile check.
    :raises RuleError: at the position of the first problem.
    """
    for comparison in comparisons(condition):
        _check_comparison(comparison, metrics, quantiles)


def _check_comparison(
    comparison: Comparison,
    metrics: Mapping[str, MetricSpec] | None,
    quantiles: Collection[int] | None,
) -> None:
    terms = metric_terms(comparison)
    where = {"line": comparison.line, "column": comparison.column}
    if not terms:
        raise RuleError(
            "this comparison has no predicted(...) or current(...) term, so it never changes",
            **where,
        )
    predicted = [t for t in terms if isinstance(t, Predicted)]
    current = [t for t in terms if isinstance(t, Current)]
    if comparison.within is not None and not predicted:
        raise RuleError(
            "'within' applies to predicted(...) terms; a current(...) comparison takes 'for'",
            **where,
        )
    if comparison.for_ is not None and predicted:
        raise RuleError(
            "'for' applies to current(...) terms only; a predicted(...) comparison takes 'within'",
            **where,
        )
    if comparison.for_ is not None and not current:
        raise RuleError("'for' needs a current(...) term", **where)  # pragma: no cover
    for side in (comparison.left, comparison.right):
        _check_arithmetic(side)

    metric_unit: str | None = None
    first: Predicted | Current | None = None
    for term in terms:
        if metrics is not None:
            if term.metric not in metrics:
                known = ", ".join(sorted(metrics)) or "none"
                raise RuleError(
                    f"unknown metric {term.metric!r}; this pool's metrics are {known}",
                    line=term.line,
                    column=term.column,
                )
            unit = metrics[term.metric].unit
            if metric_unit is None:
                metric_unit, first = unit, term
            elif unit != metric_unit:
                assert first is not None
                raise RuleError(
                    f"compares {first.metric} ({metric_unit}) with {term.metric} ({unit}); "
                    "both sides of a comparison need the same unit",
                    line=term.line,
                    column=term.column,
                )
        if isinstance(term, Predicted) and quantiles is not None and term.quantile not in quantiles:
            have = ", ".join(f"p{q}" for q in sorted(quantiles))
            raise RuleError(
                f"forecasts do not produce p{term.quantile} (they carry {have}); "
                "use one of those or add it to forecast.quantiles",
                line=term.line,
                column=term.column,
            )
    if metric_unit is None:
        return
    for side in (comparison.left, comparison.right):
        for value in _values(side):
            if isinstance(value, Quantity) and not _scalar_position(side, value):
                _check_unit(value, metric_unit, first)


def _scalar_position(side: Value, target: Quantity) -> bool:
    """True when ``target`` multiplies or divides a metric term (a factor, not a level)."""
    if not isinstance(side, Arithmetic):
        return False
    if side.op in ("*", "/"):
        return target in (side.left, side.right) and (
            _has_metric(side.left) or _has_metric(side.right)
        )
    return _scalar_position(side.left, target) or _scalar_position(side.right, target)


def _check_unit(quantity: Quantity, metric_unit: str, term: Predicted | Current | None) -> None:
    if unit_factor(quantity.unit, metric_unit) is not None:
        return
    fits = sorted(_METRIC_UNITS.get(metric_unit, {}))
    written = f"{quantity.value:g}{quantity.unit}"
    name = term.metric if term is not None else "the metric"
    hint = (
        f"write a bare number or one of {', '.join(fits)}"
        if fits
        else "write a bare number in the metric's own unit"
    )
    raise RuleError(
        f"{written!r} does not fit {name}, which is measured in {metric_unit}; {hint}",
        line=quantity.line,
        column=quantity.column,
    )


def _has_metric(value: Value) -> bool:
    return any(isinstance(v, Predicted | Current) for v in _values(value))


def _check_arithmetic(value: Value) -> None:
    if not isinstance(value, Arithmetic):
        return
    _check_arithmetic(value.left)
    _check_arithmetic(value.right)
    where = {"line": value.line, "column": value.column}
    if value.op == "*" and _has_metric(value.left) and _has_metric(value.right):
        raise RuleError("multiplies two metrics; scale a metric by a plain number", **where)
    if value.op == "/" and _has_metric(value.right):
        raise RuleError("divides by a metric; divide by a plain number instead", **where)
    if value.op in ("*", "/"):
        for operand in (value.left, value.right):
            if isinstance(operand, Quantity) and operand.unit is not None and _has_metric(value):
                raise RuleError(
                    f"the factor {operand.value:g}{operand.unit} carries a unit; a scale factor is a plain number",
                    line=operand.line,
                    column=operand.column,
                )
    if value.op == "/" and isinstance(value.right, Quantity) and value.right.value == 0:
        raise RuleError("divides by zero", **where)
