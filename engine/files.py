"""Writing files so that a crash leaves the old version or the new one, never half of one."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import Diagnostic, KonvergeError


def write_atomically(path: Path, text: str, *, code: str = "E001", what: str = "this file") -> None:
    """Write to a temporary file beside `path`, fsync it, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.konverge-tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise KonvergeError(Diagnostic(code, f"cannot write {what}: {e.strerror or e}", file=str(path)))
