"""Diagnostics and the one exception type for user errors.

Every stage reports problems as `Diagnostic`s that carry a source span, so the
CLI can print them rustc-style: `path:line:col: error[E0xx]: message`, the
source line, a caret under the span and a hint. Anything a user can cause is
raised as `KonvergeError`, caught once at the CLI edge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import attrs


def tuple_state(cls: type) -> type:
    """Have a frozen attrs class with slots pickle (and copy) its fields as a tuple, set back
    through its slots' descriptors. attrs's own state is a dict, set back field by field through
    object.__setattr__: the parse cache unpickles some 50,000 nodes and spans at every command,
    and that took half the time of loading them. The methods are written out for each class,
    as attrs writes its own: a loop over the fields costs most of what this saves."""
    names = [f.name for f in attrs.fields(cls)]
    scope = {f"_set{i}": getattr(cls, name).__set__ for i, name in enumerate(names)}
    source = (f"def __getstate__(self):\n    return ({''.join(f'self.{name}, ' for name in names)})\n"
              "def __setstate__(self, state):\n"
              + "".join(f"    _set{i}(self, state[{i}])\n" for i in range(len(names))) + "    pass\n")
    exec(compile(source, f"<state of {cls.__qualname__}>", "exec"), scope)
    cls.__getstate__, cls.__setstate__ = scope["__getstate__"], scope["__setstate__"]
    return cls


@tuple_state
@attrs.frozen(slots=True)
class Span:
    """A region of a source file: 1-based line and column, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@attrs.frozen(slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    file: str | None = None  # where no position applies (unreadable file, a directory)
    hint: str | None = None
    severity: str = "error"  # "error" or "warning"

    @property
    def where(self) -> str | None:
        """`file:line:col`, or the file; None for a diagnostic without a place (a usage error)."""
        if self.span is not None:
            return str(self.span)
        return self.file

    @property
    def located(self) -> str:
        """The diagnostic's place followed by `: `, as its first line starts; nothing without a
        place — like rustc's and kubectl's, rather than a made-up file name."""
        return f"{self.where}: " if self.where else ""


class KonvergeError(Exception):
    """A user error: bad input, an invalid spec, a refused operation.

    Carries one or more diagnostics and the exit code the CLI should use.
    """

    exit_code = 1

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic] | str, exit_code: int | None = None):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(code="E000", message=diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__("; ".join(f"{d.located}{d.message}" for d in self.diagnostics))


def render(diagnostics: list[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """Diagnostics as a compiler prints them, sorted by position.

    ```
    spec.konv:3:5: error[E033]: `Node` has no field `cpux`
      |
    3 |   cpux: 4
      |   ^^^^
      = hint: did you mean `cpu`?
    ```
    """
    sources = {} if sources is None else sources
    lines_of: dict[str, list[str]] = {}
    out = []
    for i, d in enumerate(sorted(diagnostics, key=_position)):
        if i:
            out.append("")
        out.append(f"{d.located}{d.severity}[{d.code}]: {d.message}")
        if d.span is not None and d.span.line > 0:
            lines = lines_of.get(d.span.file)
            if lines is None:
                text = sources.get(d.span.file)
                if text is None:
                    text = _read_quietly(d.span.file)
                lines = lines_of[d.span.file] = text.split("\n")
            if 0 < d.span.line <= len(lines):
                out.extend(_excerpt(lines[d.span.line - 1], d.span))
        if d.hint:
            pad = " " * (len(str(d.span.line)) if d.span is not None and d.span.line > 0 else 1)
            out.append(f"{pad} = hint: {d.hint}")
    return "\n".join(out) + ("\n" if out else "")


def _position(d: Diagnostic):
    if d.span is not None:
        return (d.span.file, d.span.line, d.span.col, d.code)
    return (d.file or "", 0, 0, d.code)


def _read_quietly(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:  # as parse.decode_source reads it
            return f.read()
    except OSError:
        return ""


def _excerpt(line: str, span: Span, width: int = 100) -> list[str]:
    """The source line (a window of it, if long) with carets under the span."""
    line = line.replace("\t", " ")
    start = span.col - 1
    end = span.end_col - 1 if span.end_line == span.line else len(line)
    end = max(end, start + 1)
    offset = 0
    if len(line) > width:
        offset = max(0, min(start - 20, len(line) - width))
        shown = line[offset:offset + width]
        prefix = "…" if offset else ""
        suffix = "…" if offset + width < len(line) else ""
        line = prefix + shown + suffix
        start = start - offset + len(prefix)
        end = min(end - offset + len(prefix), len(line))
    num = str(span.line)
    pad = " " * len(num)
    carets = "^" * max(1, min(end, len(line) + 1) - start)
    return [f"{pad} |", f"{num} | {line.rstrip()}", f"{pad} | {' ' * start}{carets}"]


@contextlib.contextmanager
def located(source: str) -> Iterator[None]:
    """Have the diagnostics of a KonvergeError raised inside, those that name no position, name
    `source` instead: the spec files or the data directory that a view of a cluster looked at."""
    try:
        yield
    except KonvergeError as e:
        e.diagnostics = [d if d.span is not None or d.file else attrs.evolve(d, file=source) for d in e.diagnostics]
        raise
