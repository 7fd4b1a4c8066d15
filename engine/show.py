"""Showing objects, as `kubectl get` does: reading a data directory and the generic table's columns.

Reads a store's data directory read-only (no lock, nothing written), so it can
look at the store of a running engine. Values are shown by their declared
type: quantities as `250m`/`128Mi`, durations as `30s`, in tables, JSON and
YAML alike.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from fractions import Fraction

from .api import META, APIError, APIServer
from .check import KindInfo, Program, load_program
from .errors import Diagnostic, KonvergeError
from .store import open_store
from .types import DURATION, QUANTITY, ListT, MapT, OptT, Prim, RecordT, RefT, Type
from .values import format_duration, format_quantity, to_json

TABLE_FIELDS = 4  # scalar fields shown besides the name; -o wide shows them all


def stored_objects(data_dir: str, specs: list[str] = ()) -> tuple[Program, list[dict]]:
    """The program and every object of a store's data directory, opened read-only:
    what `konverge get` and `describe` show from a data directory."""
    need_data_dir(data_dir)
    program = load_program(list(specs), std=True) if specs else standard_program()
    store = open_store(data_dir, read_only=True)
    try:
        api = APIServer(program, store)
        objects = [o for info in program.kinds.values() for o in api.list(api.admin, info.name, None)[0]]
    except APIError as e:
        raise KonvergeError(Diagnostic("E201", e.message, file=data_dir, hint=e.diagnostics[0].hint)) from None
    finally:
        store.close()
    return program, objects


def need_data_dir(data_dir: str) -> None:
    """E201 unless there is a directory at `data_dir`: what a view of a persisted store says first."""
    if not os.path.isdir(data_dir):
        raise KonvergeError(Diagnostic("E201", f"there is no store data directory at {data_dir}", file=data_dir,
                                       hint="pass the --data-dir the engine was run with"))


def standard_program() -> Program:
    """The program of the standard control plane alone (rules/)."""
    return load_program([], std=True)


def display(program: Program, info: KindInfo, obj: dict) -> dict:
    """An object as JSON-ready data, each value in the text of its type."""
    out = {k: obj[k] for k in META if k in obj}  # kubectl's order: identity first, then the fields
    for f in info.fields.values():
        if f.name in obj:
            out[f.name] = _display(program, f.type, obj[f.name])
    for key, value in obj.items():
        out.setdefault(key, to_json(value))
    return out


def _display(program: Program, t: Type, value):
    if value is None:
        return None
    if isinstance(t, OptT):
        return _display(program, t.inner, value)
    if t == QUANTITY and isinstance(value, int | Fraction):
        return format_quantity(value)
    if t == DURATION and isinstance(value, int | Fraction):
        return format_duration(value)
    if isinstance(t, ListT) and isinstance(value, list):
        return [_display(program, t.elem, x) for x in value]
    if isinstance(t, MapT) and isinstance(value, dict):
        return {k: _display(program, t.value, x) for k, x in value.items()}
    if isinstance(t, RecordT) and isinstance(value, dict) and t.name in program.records:
        fields = program.records[t.name].fields
        return {k: _display(program, fields[k].type, x) if k in fields else x for k, x in value.items()}
    return to_json(value)


def _scalar(t: Type) -> bool:
    t = t.inner if isinstance(t, OptT) else t
    return isinstance(t, RefT) or (isinstance(t, Prim) and t.name != "any")


def _header(field: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", field).upper()


def cell(value) -> str:
    """A value as a table shows it: `<none>`, `true`/`false`, or its text."""
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def columns(program: Program, info: KindInfo, wide: bool, age_of: Callable[[dict], str]
            ) -> tuple[list[str], Callable[[dict], list[str]]]:
    """The generic table's columns, for a kind without a table of its own: its first scalar
    fields, then AGE (`age_of(object)`), then with -o wide its other scalar fields — kubectl
    puts AGE after the usual columns and the wide ones after it. Headers, and a row function."""
    fields = [f.name for f in info.fields.values() if _scalar(f.type)]
    usual, extra = fields[:TABLE_FIELDS], fields[TABLE_FIELDS:] if wide else []

    def row(o: dict) -> list[str]:
        shown = display(program, info, o)
        return [cell(shown.get(f)) for f in usual] + [age_of(o)] + [cell(shown.get(f)) for f in extra]
    return [_header(f) for f in usual] + ["AGE"] + [_header(f) for f in extra], row


__all__ = ["cell", "columns", "display", "need_data_dir", "standard_program", "stored_objects"]
