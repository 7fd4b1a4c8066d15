"""A cache of parsed modules, as Python keeps .pyc files.

Every command loads the standard control plane in rules/, and parsing it was a
third of a small command's time; unpickling the trees is about eight times
faster. The loader uses the cache only for the files it finds itself (the
standard control plane, imports), never for the files named on the command
line: those are the user's input, parsed afresh.

An entry is named by a digest of everything that shapes its tree: the file's
bytes, its name (spans carry it), the Konverge, Python and Lark versions and the
engine sources that build trees, so a stale entry is never looked up. Lark's version
is read from its package's __init__.py, which declares it, rather than imported: a
command that finds every file in the cache never imports Lark (engine/lalr.py). attrs's
version is left out: asking for it reads package metadata (14 ms), and a pickle
holds a node's fields as ast.py declares them, which attrs reads in any version.
An entry opens with a digest of the rest, so a torn or damaged one is never
unpickled. Any trouble reading or writing the cache means parsing the text: the
cache can make a command faster, never make it fail or change what it prints.
Like a .pyc, an entry is trusted once its digest matches: the directory is the
user's own (made 0700), and one shared with others would be theirs to write.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

from . import __version__
from . import ast as A
from .parse import decode_source, grammar_text, parse_file, parse_text

MAX_ENTRIES = 256  # the least lately used beyond these are dropped: ~20 copies of rules/
# The engine modules that importing the parser and its Lark half loads (tests/test_parsecache.py
# checks the list).
_SHAPERS = ("ast.py", "errors.py", "parse.py", "fastparse.py", "lalr.py", "parsecache.py")
_DIGEST_SIZE = 32  # bytes of the blake2b digest that opens an entry
_OFF = ("off", "0", "false", "no")
_STALE_TEMP = 3600  # seconds after which a temp file is one a killed writer left


def cache_dir() -> Path | None:
    """Where parsed modules are kept, or None when the cache is off (`KONVERGE_CACHE=off`)."""
    if os.environ.get("KONVERGE_CACHE", "").strip().lower() in _OFF:
        return None
    if os.environ.get("KONVERGE_CACHE_DIR"):
        return Path(os.environ["KONVERGE_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative one is ignored
        return Path(xdg) / "konverge"
    home = os.path.expanduser("~")  # "/" where HOME is empty
    if home == "/" or not os.path.isabs(home) or not os.path.isdir(home):  # no home of one's own: none is made up
        return None
    return Path(home) / ".cache" / "konverge"


def parse_found_file(path: Path) -> A.Module:
    """parse_file(path), from the cache when the same text was parsed before."""
    folder = cache_dir()
    salt = _salt()
    if folder is None or salt is None:
        return parse_file(path)
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError:
        return parse_file(path)  # says why it cannot be read
    key = hashlib.sha256(salt)
    key.update(repr(name).encode())
    key.update(data)
    entry = folder / "parsed" / f"{key.hexdigest()}.pickle"
    module = _load(entry)
    if module is None:
        module = parse_text(decode_source(data, name), name)
        _store(entry, module)
    return module


@functools.lru_cache(maxsize=1)
def _salt() -> bytes | None:
    """A digest of the versions and engine sources that shape a tree; None if a source cannot be read."""
    salt = hashlib.sha256(repr((__version__, sys.version)).encode())
    try:
        lark = importlib.util.find_spec("lark")
        sources = [Path(lark.origin).read_bytes(), grammar_text().encode()] + \
            [(Path(__file__).parent / f).read_bytes() for f in _SHAPERS]
    except (OSError, AttributeError, TypeError, ValueError):  # no Lark, or not a package of files
        return None
    for text in sources:
        salt.update(hashlib.sha256(text).digest())
    return salt.digest()


def _load(entry: Path) -> A.Module | None:
    """The module an entry holds, or None (none, or damaged): its use makes it the newest."""
    try:
        blob = entry.read_bytes()
        if blob[:_DIGEST_SIZE] != hashlib.blake2b(blob[_DIGEST_SIZE:], digest_size=_DIGEST_SIZE).digest():
            return None
        module = pickle.loads(blob[_DIGEST_SIZE:])
    except Exception:  # missing, unreadable or not a pickle of ours: parse instead
        return None
    if not isinstance(module, A.Module):
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # lately used: kept by _prune
    return module


def _store(entry: Path, module: A.Module):
    """Keep a module, whole or not at all, then keep the bound."""
    try:
        payload = pickle.dumps(module, protocol=pickle.HIGHEST_PROTOCOL)
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # pickles are code: the user's own
        fd, temp = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest())
                f.write(payload)
            os.replace(temp, entry)  # readers see the whole entry or none
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _prune(entry.parent)
    except Exception:  # an unwritable or full disk, a tree too deep to pickle: parsed next time too
        pass


def _prune(folder: Path):
    """Drop the entries beyond MAX_ENTRIES, least lately used first, and what killed writers left."""
    entries = []
    for f in folder.glob("*.pickle"):
        with contextlib.suppress(OSError):
            entries.append((f.stat().st_mtime, f))
    for _, f in sorted(entries)[:-MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            f.unlink()
    now = time.time()
    for f in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if now - f.stat().st_mtime > _STALE_TEMP:
                f.unlink()
