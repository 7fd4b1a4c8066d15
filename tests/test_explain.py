"""explain and why_not on tiny programs of their own: generic, no Kubernetes here."""

import pytest

from engine.check import load_program
from engine.errors import KonvergeError
from engine.explain import (explain, load_state, persist_trace, read_trace, render_explanation, render_why_not,
                            split_and, why_not)
from engine.fixpoint import reconcile
from engine.store import open_store

KINDS = """
kind Item { size: int = 0  done: bool = false  note: string = ""  box: string? }
kind Box { capacity: int = 0  open: bool = true }
kind Summary { total: int = 0 }
"""


@pytest.fixture
def build(tmp_path):
    """A program from text, written to a file so that spans point at it, reconciled."""
    def make(text: str, **kw):
        path = tmp_path / "t.konv"
        path.write_text(KINDS + text, encoding="utf-8")
        program = load_program([str(path)], std=False)
        return program, reconcile(program, **kw)
    return make


def test_explain_lists_the_writes_and_the_conditions_that_hold(build):
    program, r = build("""
    controller tagger { rule tag for item i where i.size > 1 and i.note == "" let half = i.size / 2 set i.note = "big" }
    controller checker { rule check for item i where i.note == "big" set i.done = true }
    item a { size: 4 }
    """)
    x = explain(program, r, "Item", "default", "a")
    assert [(w.actor, w.rule, w.verb) for w in x.writes] == [
        ("spec", None, "create"), ("tagger", "tag", "update"), ("checker", "check", "update")]
    assert [w.revision for w in x.writes] == sorted(w.revision for w in x.writes)
    tag, check = x.instances
    assert tag.instance == "tagger/tag[Item/default/a]"
    # The tagger's condition tested the field it set: it held, and now does not.
    assert [(c.text, c.value, c.holds) for c in tag.conditions] == [
        ("for item i", "Item/default/a", True), ("i.size > 1", "true", True), ('i.note == ""', "false", False)]
    assert check.applies
    assert [(c.text, c.value) for c in check.conditions][1:] == [('i.note == "big"', "true")]
    text = render_explanation(x)
    assert "tagger/tag[Item/default/a]  [no longer holds]" in text and "✓ where i.note == \"big\"" in text
    assert x.declared and x.declared.endswith("t.konv:8:5")


def test_explain_shows_let_values(build):
    program, r = build("""
    controller c { rule r for item i let twice = i.size * 2 where twice > 3 set i.note = "x" }
    item a { size: 2 }
    """)
    why = explain(program, r, "Item", None, "a").instances[0]
    assert ("let twice = i.size * 2", "4") in [(c.text, c.value) for c in why.conditions]


def test_an_ensured_object_names_its_owner_and_its_conditions(build):
    program, r = build("""
    controller sum { rule total for box b where b.open ensure summary b.name { total: b.capacity } }
    box b1 { capacity: 3 }
    """)
    x = explain(program, r, "Summary", "default", "b1")
    assert x.owner_id == "sum/total[Box/default/b1]"
    assert x.owner.applies and [c.text for c in x.owner.conditions] == ["for box b", "b.open"]
    assert "deleted when they stop holding" in render_explanation(x)


def test_a_deleted_object_is_still_explained_by_its_writes(build):
    program2, _ = build("""
    controller sum { rule total for box b where b.open ensure summary b.name { total: b.capacity } }
    box b1 { capacity: 3 }
    scenario "close" { at 5s: update box b1 { open: false } }
    """)
    r2 = reconcile(program2, scenario=program2.scenarios["close"])
    x = explain(program2, r2, "Summary", "default", "b1")
    assert x.object is None
    assert [w.verb for w in x.writes] == ["create", "delete"]
    assert "no longer exists: deleted at revision" in render_explanation(x)


def test_explaining_an_unknown_object_suggests_a_near_name(build):
    program, r = build("item apple { size: 1 }")
    with pytest.raises(KonvergeError) as e:
        explain(program, r, "Item", "default", "appel")
    assert "did you mean `apple`?" in e.value.diagnostics[0].hint


PICK = """
def roomy(b: Box, i: Item) = b.capacity >= i.size
controller placer {
  rule place
    for item i
    where i.box == none
    pick box b where b.open and roomy(b, i) order by b.name
      then set i.box = b.name
      else set i.note = "no box"
}
"""


def test_why_not_names_the_first_failing_conjunct_of_each_candidate(build):
    program, r = build(PICK + """
    box small { capacity: 1 }
    box tiny { capacity: 2 }
    box shut { capacity: 9  open: false }
    item big { size: 5 }
    """)
    w = why_not(program, r, "placer/place", ("Item", "default", "big"))
    assert w.applies
    assert {v.name: v.failed for v in w.verdicts} == {"shut": "b.open", "small": "roomy", "tiny": "roomy"}
    assert w.message == "0/3 boxs are available: 1 b.open, 2 roomy."
    assert "shut   b.open" in render_why_not(w)


def test_why_not_counts_the_candidates_that_fit(build):
    program, r = build(PICK + """
    box small { capacity: 1 }
    box large { capacity: 9 }
    item mid { size: 5 }
    """)
    obj = next(o for o in r.objects if o["name"] == "mid")
    w = why_not(program, r, "placer/place", obj)
    assert not w.applies  # it was placed: `i.box == none` no longer holds
    assert w.message == "1/2 boxs are available: 1 roomy."
    assert [v.failed for v in w.verdicts if v.name == "large"] == [None]


def test_why_not_refuses_a_rule_without_a_pick_and_an_unknown_rule(build):
    program, r = build(PICK + "controller c { rule r for item i set i.done = true }\nitem a { size: 1 }")
    with pytest.raises(KonvergeError, match="does not end in `pick`"):
        why_not(program, r, "c/r", ("Item", "default", "a"))
    with pytest.raises(KonvergeError) as e:
        why_not(program, r, "placer/plaec", ("Item", "default", "a"))
    assert "placer/place" in e.value.diagnostics[0].hint


def test_split_and_flattens_the_chain_left_to_right(build):
    program, _ = build(PICK)
    rule = program.controllers["placer"].rules[0]
    assert len(split_and(rule.pick.where)) == 2


def test_the_trace_persists_beside_the_store_and_reads_back(build, tmp_path):
    text = """
    controller c { rule r for item i where not i.done set i.done = true }
    item a { size: 1 }
    """
    program, _ = build(text)
    data = tmp_path / "data"
    store = open_store(str(data))
    try:
        r = reconcile(program, store=store)
        persist_trace(store, r)
        persist_trace(store, r)  # once only
    finally:
        store.close()
    trace, clock = read_trace(str(data))
    assert trace == r.trace and clock == r.clock
    state = load_state(str(data))
    assert {o["name"]: o["done"] for o in state.objects if o["kind"] == "Item"} == {"a": True}
    x = explain(program, state, "Item", "default", "a")
    assert [w.actor for w in x.writes] == ["spec", "c"]


def test_an_in_memory_store_persists_no_trace(build, tmp_path):
    program, r = build("item a { size: 1 }")
    persist_trace(open_store(None), r)  # nothing to write to, and no error
    assert read_trace(str(tmp_path)) == ((), 0)
