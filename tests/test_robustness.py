"""No input makes parse or check fail with anything but the user-error type.

Arbitrary text, and random token mutations (insert, delete, swap) of every
file in specs/ and rules/, go through parse and check; a KonvergeError is the
only acceptable failure, and it must carry positioned diagnostics. The same
holds of Kubernetes manifests read by engine/kube/manifests.py.
"""

import functools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.check import check_modules
from engine.errors import KonvergeError
from engine.kube.manifests import loads
from engine.fastparse import KEYWORDS
from engine.parse import decode_source, parse_file, parse_text

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("specs/*.konv"), *ROOT.glob("rules/*.konv"), ROOT / "tests/data/all_constructs.konv"])
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[0-9][0-9A-Za-z./]*|\s+|.')
PUNCT = ["{", "}", "(", ")", "[", "]", ":", ",", ".", "=", "==", "<=", "-", "+", "*", "/", '"', "#", "?", "<", ">"]


def run_pipeline(text: str, path: str = "fuzz.konv", others=()):
    try:
        module = parse_text(text, path)
        check_modules([*others, module])
    except KonvergeError as e:
        assert e.diagnostics, "a KonvergeError must say what is wrong"
        for d in e.diagnostics:
            assert d.message and d.code
            assert d.span is not None or d.file is not None


@given(st.text(max_size=400))
def test_arbitrary_text_raises_only_user_errors(text):
    run_pipeline(text)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_user_errors(data):
    try:
        text = decode_source(data, "fuzz.konv")
    except KonvergeError:
        return
    run_pipeline(text)


@given(st.lists(st.sampled_from([*KEYWORDS, *PUNCT, "x", "pod", "node", "1", "2Gi", '"s"', "\n"]), max_size=60))
def test_keyword_soup_raises_only_user_errors(words):
    run_pipeline(" ".join(words))


@functools.cache
def _others(path: Path):
    """The other rules files, so that a mutated file is checked among its real neighbours."""
    out = []
    for p in sorted(ROOT.glob("rules/*.konv")):
        if p != path:
            out.append(parse_file(p))
    return tuple(out)


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
@given(data=st.data())
def test_token_mutations_of_real_files_raise_only_user_errors(path, data):
    text = path.read_text()
    tokens = TOKEN.findall(text)
    vocabulary = sorted({t for t in tokens if t.strip()}) + PUNCT + list(KEYWORDS)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        i = data.draw(st.integers(0, max(0, len(tokens) - 1)), label="at")
        op = data.draw(st.sampled_from(["insert", "delete", "swap", "replace"]), label="op")
        if op == "insert":
            tokens.insert(i, " " + data.draw(st.sampled_from(vocabulary), label="token") + " ")
        elif op == "delete" and tokens:
            del tokens[i]
        elif op == "swap" and len(tokens) > 1:
            j = data.draw(st.integers(0, len(tokens) - 1), label="with")
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif tokens:
            tokens[i] = data.draw(st.sampled_from(vocabulary), label="token")
    run_pipeline("".join(tokens), str(path), _others(path))


MANIFESTS = sorted(ROOT.glob("specs/manifests/*.yaml"))
YAML_TOKEN = re.compile(r"[A-Za-z0-9_./-]+|\s+|.")
YAML_PUNCT = ["- ", ": ", "---\n", "{", "}", "[", "]", ",", "&a ", "*a", "<<: ", "'", '"', "#", "\t", "\n  "]


def load_manifest(text: str) -> None:
    try:
        loads(text, "fuzz.yaml")
    except KonvergeError as e:
        assert e.diagnostics and all(d.message and d.code for d in e.diagnostics)
        assert all(d.span is not None or d.file is not None for d in e.diagnostics)


@given(st.text(max_size=400))
def test_arbitrary_text_as_a_manifest_raises_only_user_errors(text):
    load_manifest(text)


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
@given(data=st.data())
def test_token_mutations_of_real_manifests_raise_only_user_errors(path, data):
    tokens = YAML_TOKEN.findall(path.read_text())
    vocabulary = sorted({t for t in tokens if t.strip()}) + YAML_PUNCT
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        i = data.draw(st.integers(0, max(0, len(tokens) - 1)), label="at")
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]), label="op")
        if op == "insert":
            tokens.insert(i, data.draw(st.sampled_from(vocabulary), label="token"))
        elif op == "delete" and tokens:
            del tokens[i]
        elif tokens:
            tokens[i] = data.draw(st.sampled_from(vocabulary), label="token")
    load_manifest("".join(tokens))


def test_a_missing_dependency_is_named_and_not_called_a_bug(monkeypatch, capsys):
    import argparse

    import engine.cli as cli

    def lacking(args):
        raise ModuleNotFoundError("No module named 'lark'", name="lark")

    class Parser:
        def parse_args(self, argv):
            return argparse.Namespace(command="check", run=lacking)

    monkeypatch.setattr(cli, "_parser", Parser)
    assert cli.main(["check"]) == 1
    err = capsys.readouterr().err
    assert "the Python package `lark` is not installed" in err and "bug" not in err
