"""Every zoo adapter (torch and JAX) is at most 25 code lines, declaration included, as ruff
formats it: what a user writes to gate a research sampler stays short."""

from __future__ import annotations

import inspect
import io
import tokenize

import pytest

from tests.functional.zoo import ZOO

MAX_LINES = 25


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not inside a docstring."""
    lines: set[int] = set()
    previous = tokenize.NEWLINE
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        docstring = token.type == tokenize.STRING and previous in (
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
        )
        if token.type not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            if not docstring:
                lines.update(range(token.start[0], token.end[0] + 1))
            previous = token.type
        elif token.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            previous = token.type
    return len(lines)


def test_code_lines_counts_code_only() -> None:
    source = (
        'def f():\n    """Doc.\n\n    more."""\n    # a comment\n\n    return (1,\n            2)\n'
    )
    assert code_lines(source) == 3


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_adapter_is_at_most_25_code_lines(name: str) -> None:
    source = inspect.getsource(ZOO[name].adapter)
    assert code_lines(source) <= MAX_LINES, (name, code_lines(source))
