"""The parse cache: the loader's files come back from it as parsed, and trouble with it only means parsing."""

import hashlib
import os
import pickle
import subprocess
import sys

import pytest

from engine import ast as A
from engine import parse, parsecache
from engine.check import load_modules

LIB = 'def double(x: int) -> int = x * 2\n'
MAIN = 'import "lib.konv"\n\nnode n1 {\n  cpu: 2\n  memory: 4Gi\n}\n'
PARSE_TEXT = parse.parse_text  # the parser itself: the fixture counts its calls


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache directory of the test's own, and the texts parsed afresh (by name), in order."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("KONVERGE_CACHE_DIR", str(folder))
    monkeypatch.delenv("KONVERGE_CACHE", raising=False)
    parsed = []

    def counting(text, name, **fast):
        if not fast:  # not the parser's own call for what its fast path left
            parsed.append(name)
        return PARSE_TEXT(text, name, **fast)

    monkeypatch.setattr(parse, "parse_text", counting)
    monkeypatch.setattr(parsecache, "parse_text", counting)
    return folder, parsed


@pytest.fixture
def spec(tmp_path):
    (tmp_path / "lib.konv").write_text(LIB)
    (tmp_path / "main.konv").write_text(MAIN)
    return tmp_path / "main.konv"


def entries(folder):
    return sorted((folder / "parsed").glob("*.pickle"))


def lib_parses(parsed):
    return sum(name.endswith("lib.konv") for name in parsed)


def spans(module):
    """Every node's type and span: equality of nodes leaves spans out."""
    return [(type(n), getattr(n, "span", None)) for n in A.walk(module)]


def test_the_standard_control_plane_is_parsed_once_then_loaded_from_the_cache(cache):
    folder, parsed = cache
    first, errors = load_modules([])
    assert not errors and len(parsed) == len(first) > 0
    second, _ = load_modules([])
    assert len(parsed) == len(first), "the second load parsed again"
    assert second == first
    assert [spans(m) for m in second] == [spans(m) for m in first]
    assert [m.comments for m in second] == [m.comments for m in first]  # equality leaves them out
    assert len(entries(folder)) == len(first)


def test_files_named_on_the_command_line_are_parsed_every_time(cache, spec):
    folder, parsed = cache
    load_modules([spec], std=False)
    load_modules([spec], std=False)
    assert parsed == [str(spec), str(spec.parent / "lib.konv"), str(spec)]  # the import once
    assert len(entries(folder)) == 1


def test_a_file_named_on_the_command_line_is_parsed_afresh_even_where_another_imports_it(cache, spec):
    folder, parsed = cache
    lib = spec.parent / "lib.konv"
    load_modules([spec, lib], std=False)
    load_modules([spec, lib], std=False)
    assert parsed == [str(spec), str(lib)] * 2 and not entries(folder)


def test_a_changed_import_is_parsed_afresh(cache, spec):
    folder, parsed = cache
    load_modules([spec], std=False)
    (spec.parent / "lib.konv").write_text(LIB.replace("x * 2", "x * 3"))
    modules, _ = load_modules([spec], std=False)
    assert parsed.count(str(spec.parent / "lib.konv")) == 2
    assert modules[0].decls == PARSE_TEXT(LIB.replace("x * 2", "x * 3")).decls


def test_the_same_text_under_another_name_keeps_its_own_spans(cache, spec):
    folder, parsed = cache
    (spec.parent / "lib2.konv").write_text(LIB.replace("double", "twice"))
    (spec.parent / "lib3.konv").write_text(LIB.replace("double", "twice"))
    (spec.parent / "main.konv").write_text('import "lib2.konv"\n' + MAIN)
    load_modules([spec], std=False)
    (spec.parent / "main.konv").write_text('import "lib3.konv"\n' + MAIN)
    modules, _ = load_modules([spec], std=False)
    assert modules[0].decls[0].span.file == str(spec.parent / "lib3.konv")


def test_an_import_reached_by_another_name_keeps_the_name_it_was_reached_by(cache, spec, monkeypatch):
    folder, parsed = cache
    monkeypatch.chdir(spec.parent)
    relative, _ = load_modules(["main.konv"], std=False)
    absolute, _ = load_modules([spec], std=False)
    assert relative[0].decls[0].span.file == "lib.konv"
    assert absolute[0].decls[0].span.file == str(spec.parent / "lib.konv")
    assert lib_parses(parsed) == 2 and len(entries(folder)) == 2


@pytest.mark.parametrize("damage", [
    lambda blob: blob[: len(blob) // 2],  # torn
    lambda blob: blob.replace(b"double", b"dOuble"),  # one bit flipped, still a pickle
    lambda blob: b"",  # empty
    lambda blob: blob[:32] + b"not a pickle",
])
def test_a_damaged_entry_is_parsed_afresh_and_replaced(cache, spec, damage):
    folder, parsed = cache
    first, _ = load_modules([spec], std=False)
    [entry] = entries(folder)
    entry.write_bytes(damage(entry.read_bytes()))
    second, _ = load_modules([spec], std=False)
    assert lib_parses(parsed) == 2 and second == first
    load_modules([spec], std=False)
    assert lib_parses(parsed) == 2, "the damaged entry was not replaced"


def test_an_entry_that_is_not_a_module_is_parsed_afresh(cache, spec):
    folder, parsed = cache
    load_modules([spec], std=False)
    [entry] = entries(folder)
    payload = pickle.dumps("a string")
    entry.write_bytes(hashlib.blake2b(payload, digest_size=parsecache._DIGEST_SIZE).digest() + payload)
    modules, errors = load_modules([spec], std=False)
    assert not errors and lib_parses(parsed) == 2 and isinstance(modules[0], A.Module)


def test_an_unwritable_cache_directory_only_means_parsing(tmp_path, cache, spec, monkeypatch):
    _, parsed = cache
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KONVERGE_CACHE_DIR", str(blocker))  # a file: no directory can be made under it
    first, errors = load_modules([spec], std=False)
    second, _ = load_modules([spec], std=False)
    assert not errors and second == first and lib_parses(parsed) == 2


@pytest.mark.parametrize("off", ["off", "OFF", "0", "false", "no"])
def test_the_cache_turned_off_parses_every_time_and_writes_nothing(cache, spec, monkeypatch, off):
    folder, parsed = cache
    monkeypatch.setenv("KONVERGE_CACHE", off)
    load_modules([spec], std=False)
    load_modules([spec], std=False)
    assert lib_parses(parsed) == 2 and not folder.exists()


def test_the_least_lately_used_entries_are_dropped_beyond_the_bound(cache, spec, monkeypatch):
    folder, parsed = cache
    monkeypatch.setattr(parsecache, "MAX_ENTRIES", 2)
    lib = spec.parent / "lib.konv"

    def load(n, used_at=None):
        lib.write_text(LIB.replace("2", str(n)))
        load_modules([spec], std=False)
        if used_at is not None:  # a time of its own: timestamps may be coarser than the test
            [newest] = sorted(entries(folder), key=lambda f: f.stat().st_mtime_ns)[-1:]
            os.utime(newest, (used_at, used_at))

    load(5, used_at=1_000)
    load(6, used_at=2_000)
    load(5)  # used again: the newest, so 6 is the least lately used
    assert lib_parses(parsed) == 2
    load(7)
    assert len(entries(folder)) == 2
    load(5)
    assert lib_parses(parsed) == 3, "the entry used lately was dropped"
    load(6)
    assert lib_parses(parsed) == 4, "the least lately used entry was kept"


@pytest.fixture
def fresh_salt():
    """The engine sources are digested once a process: digest them again, before and after."""
    parsecache._salt.cache_clear()
    yield
    parsecache._salt.cache_clear()


def test_a_changed_grammar_parses_afresh(cache, spec, monkeypatch, fresh_salt):
    folder, parsed = cache
    load_modules([spec], std=False)
    monkeypatch.setattr(parsecache, "grammar_text", lambda: parse.grammar_text() + "\n// changed\n")
    parsecache._salt.cache_clear()
    load_modules([spec], std=False)
    assert lib_parses(parsed) == 2 and len(entries(folder)) == 2


def test_an_unreadable_engine_source_turns_the_cache_off(cache, spec, monkeypatch, fresh_salt):
    folder, parsed = cache
    monkeypatch.setattr(parsecache, "_SHAPERS", parsecache._SHAPERS + ("missing.py",))
    load_modules([spec], std=False)
    load_modules([spec], std=False)
    assert lib_parses(parsed) == 2 and not folder.exists()


def test_the_engine_sources_in_the_key_are_those_the_parser_is_made_of():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, engine.parsecache, engine.lalr; "
                               "print(*sorted(m for m in sys.modules if m.startswith('engine')))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert sorted(loaded) == sorted(["engine"] + ["engine." + f.removesuffix(".py") for f in parsecache._SHAPERS])


def test_the_cache_lives_in_konverge_cache_dir_else_xdg_cache_home_else_home(monkeypatch, tmp_path):
    monkeypatch.delenv("KONVERGE_CACHE", raising=False)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KONVERGE_CACHE_DIR", str(tmp_path / "mine"))
    assert parsecache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("KONVERGE_CACHE_DIR")
    assert parsecache.cache_dir() == tmp_path / "xdg" / "konverge"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # the XDG spec says to ignore it
    assert parsecache.cache_dir() == tmp_path / "home" / ".cache" / "konverge"
    monkeypatch.setenv("KONVERGE_CACHE", "off")
    assert parsecache.cache_dir() is None
    monkeypatch.delenv("KONVERGE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "nowhere"))  # a home that is not there is not made
    assert parsecache.cache_dir() is None
    monkeypatch.setenv("HOME", "")
    assert parsecache.cache_dir() is None


def test_a_tree_comes_back_from_its_pickle_whole_spans_and_all():
    # Nodes and spans pickle their fields as a tuple, set back through their slots (errors.tuple_state).
    import copy

    from engine.check import std_dir

    for path in sorted(std_dir().glob("*.konv")):
        module = parse.parse_file(path)
        for back in (pickle.loads(pickle.dumps(module, protocol=pickle.HIGHEST_PROTOCOL)), copy.deepcopy(module)):
            assert back == module and repr(back) == repr(module) and spans(back) == spans(module)
            assert back.comments == module.comments


def test_a_pickle_of_a_node_holds_its_fields_in_order():
    number = A.Number("3", span=A.Span("f.konv", 1, 2, 1, 3))
    assert number.__getstate__() == ("3", A.Span("f.konv", 1, 2, 1, 3))
    with pytest.raises(Exception):  # still frozen
        number.text = "4"


def test_a_command_that_finds_every_file_in_the_cache_never_imports_lark(tmp_path):
    # engine/lalr.py is imported only where a file needs the grammar: the fast path reads a spec of
    # literal objects, and the standard control plane comes from the cache.
    (tmp_path / "n.konv").write_text("node n1 { cpu: 4 memory: 8Gi }\n")
    code = ("import sys; from engine import cli; cli.main(['reconcile', sys.argv[1]]); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 'engine') and 'lark' in m or m == 'engine.lalr'))")
    env = {**os.environ, "KONVERGE_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KONVERGE_CACHE", None)
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path / "n.konv")], capture_output=True, text=True,
                           env=env, check=True).stdout for _ in range(2)]
    assert "converged" in runs[1] and runs[1].rstrip().endswith("[]")
    assert runs[0].rstrip().endswith("]") and "engine.lalr" in runs[0].splitlines()[-1]  # the first run parsed the rules
