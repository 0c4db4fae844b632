"""Building ClickHouse queries as sqlglot trees: bound values, constant fragments, the one name check.

Every query Bard sends to ClickHouse about sessions and funnels is a tree, rendered once at the edge
(:func:`render`). Values are ``exp.Placeholder`` nodes bound in a :class:`QueryParameters` (they render as
``{p0: String}``, the value goes in clickhouse-connect's ``parameters=``); structure comes from constants of the
calling module (:func:`fragment`) and identifiers from allow-lists. So request data never reaches the text.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import sqlglot
from sqlglot import exp

DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""Database names Bard accepts, in every place that names one (the engine, the migrations, the funnel compiler):
letters, digits and underscores, not starting with a digit, at most 64 characters. The one identifier in Bard's
queries that does not come from its own source."""


class InvalidDatabaseName(ValueError):
    def __init__(self, name: object) -> None:
        super().__init__(
            f"database name must be letters, digits and underscores, not starting with a digit, at most 64 "
            f"characters: {name!r}"
        )


def check_database_name(name: object) -> str:
    """``name`` if it is an acceptable database name (:data:`DATABASE_NAME`); :class:`InvalidDatabaseName` if not."""
    if not isinstance(name, str) or not DATABASE_NAME.fullmatch(name):
        raise InvalidDatabaseName(name)
    return name


class QueryParameters:
    """Binds values to placeholders ``p0, p1, ...`` in the order a builder asks for them.

    Never de-duplicates equal values: two queries of the same shape must give the same text even when one of
    them repeats a value.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, clickhouse_type: str) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name, kind=data_type(clickhouse_type).copy())


@functools.cache
def data_type(clickhouse_type: str) -> exp.DataType:
    """A parsed type, kept: parsing the same few type names for every placeholder is most of a build's cost."""
    return exp.DataType.build(clickhouse_type, dialect="clickhouse")


@functools.cache
def _parsed(text: str) -> exp.Expr:
    return sqlglot.parse_one(text, read="clickhouse")


def fragment(text: str) -> exp.Expr:
    """A fresh tree of a constant SQL expression of the calling module (a column, a function of columns).

    Only for text written in Bard's source: a string given here is parsed as SQL, so it must never hold request
    data (values go through :meth:`QueryParameters.bind`)."""
    return _parsed(text).copy()


def render(tree: exp.Expr, params: QueryParameters) -> tuple[str, dict[str, Any]]:
    """The one place a tree becomes text: the SQL and the values bound to its placeholders."""
    return tree.sql(dialect="clickhouse"), dict(params.values)


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def column(name: str) -> exp.Column:
    return exp.column(name)


def number(value: int | str) -> exp.Expr:
    return exp.Literal.number(value)


def lambda_(body: exp.Expr, argument: str) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(argument)])


def and_(*conditions: exp.Expr) -> exp.Expr:
    return exp.and_(*conditions, copy=False)


def or_(*conditions: exp.Expr) -> exp.Expr:
    return exp.or_(*conditions, copy=False)


def table(name: str, database: str | None = None) -> exp.Table:
    """A table of Bard's schema (``name`` is a constant of the caller), in ``database`` if given (checked)."""
    if database is None:
        return exp.Table(this=exp.to_identifier(name))
    return exp.Table(this=exp.to_identifier(name), db=exp.to_identifier(check_database_name(database)))
