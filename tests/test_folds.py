"""Folds (Evaluator.fold): a def that counts and sums a list, given a comprehension over one index
entry, kept from its members' parts. Its value and its reads must be those of the same list made
and combined afresh, whatever members joined, left or changed in between."""

from __future__ import annotations

import functools
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import ast as A
from engine import fixpoint
from engine.check import check_modules, load_program, std_dir
from engine.eval import EvalError, Evaluator
from engine.parse import parse_text
from engine.values import exact

TEXT = """
kind Item {
  group: string
  size: quantity?
  weight: int
  done: bool
}

record Part {
  size: quantity?
  weight: int
}

record Totals {
  n: int
  size: quantity
  weight: int
}

def part(i: Item) -> Part = {size: i.size, weight: i.weight}

def totals(ps: list<Part>) -> Totals = {
  n: len(ps),
  size: sum(p.size for p in ps),
  weight: sum(p.weight for p in ps),
}

# A fold: the comprehension over the kind, narrowed by the group's entry, handed to `totals`.
def use(g: string) -> Totals = totals(part(i) for item i where i.group == g and not i.done)

# The same, not a fold: the list comes from a def.
def members(g: string) -> list<Item> = [i for item i where i.group == g and not i.done]

def naive(g: string) -> Totals = totals(part(i) for i in members(g))

def heaviest(g: string) -> int = sum(i.weight for i in members(g))

def weight(g: string) -> int = weights(i for item i where i.group == g)

def weights(xs: list<Item>) -> int = sum(x.weight for x in xs)

def ratio(g: string) -> quantity = ratios(i for item i where i.group == g)

def ratios(xs: list<Item>) -> quantity = sum(10 / x.weight for x in xs)

# Not folds: the condition names a variable besides the member's; the element reads the world.
def near(g: string, w: int) -> Totals = totals(part(i) for item i where i.group == g and i.weight > w)

def crowded(g: string) -> Totals = totals(
  {size: i.size, weight: count(item j where j.group == g)}
  for item i
  where i.group == g
)
"""

GROUPS = ["a", "b", ""]


@functools.cache
def _program():
    return check_modules([parse_text(TEXT, "t.konv")])


def _item(name: str, group: str, size, weight: int, done: bool, rv: int) -> dict:
    return {"kind": "Item", "name": name, "namespace": "default", "group": group, "size": size,
            "weight": weight, "done": done, "resourceVersion": rv}


def _folding(prog, world) -> Evaluator:
    """An evaluator that keeps folds' parts, as the incremental engine's does."""
    ev = Evaluator(prog, world)
    ev.folding = True
    return ev


def _one_item():
    """The program, a cache holding one item (of group "a"), and an evaluator folding over it."""
    prog = _program()
    cache = fixpoint.Cache()
    cache.put(_item("i0", "a", 1, 5, False, 1))
    return prog, cache, _folding(prog, cache)


def _asked(ev: Evaluator, world, name: str, g: str):
    """A def's value on `g`, and what it read."""
    world.scanned = set()
    value = ev.call_def(ev.program.defs[name], [g])
    return value, world.scanned


def test_a_def_counting_and_summing_a_comprehension_over_an_index_entry_is_a_fold():
    prog = _program()
    ev = Evaluator(prog, None)
    assert ev.fold_of(prog.defs["use"].body) is not None
    assert ev.fold_of(prog.defs["weight"].body) is not None
    # The list comes from a def; the condition or the element reads more than the member.
    for name in ("naive", "near", "crowded"):
        assert ev.fold_of(prog.defs[name].body) is None


def test_the_schedulers_and_the_kubelets_use_of_a_node_are_folds():
    prog = load_program(sorted(std_dir().glob("*.konv")), std=False)
    ev = Evaluator(prog, None)
    for name in ("node_use", "admitted_use"):
        assert ev.fold_of(prog.defs[name].body) is not None, name


_SIZES = st.one_of(st.none(), st.integers(0, 10**6), st.fractions(0, 100, max_denominator=1000))

_CHANGES = st.lists(st.tuples(
    st.sampled_from(["put", "put", "put", "remove"]),
    st.integers(0, 7),  # which item
    st.sampled_from(GROUPS),
    _SIZES,
    st.integers(0, 100),
    st.booleans(),
), max_size=40)


@settings(max_examples=150, deadline=None)
@given(changes=_CHANGES)
def test_a_fold_gives_the_value_and_reads_of_its_list_combined_afresh_whatever_members_do(changes):
    prog = _program()
    cache = fixpoint.Cache()
    world = fixpoint._TrackingWorld(cache)
    ev, fresh = _folding(prog, world), Evaluator(prog, world)
    rv = 0
    for op, i, group, size, weight, done in changes:
        rv += 1
        name = f"i{i}"
        if op == "put":
            cache.put(_item(name, group, size, weight, done, rv))
        elif cache.get(("Item", "default", name)) is not None:
            cache.remove(("Item", "default", name))
        for g in GROUPS:
            got, read = _asked(ev, world, "use", g)
            want, wanted = _asked(fresh, world, "naive", g)
            assert got == want and type(got["size"]) is type(want["size"]) and read == wanted
            assert _asked(ev, world, "weight", g)[0] == _asked(fresh, world, "heaviest", g)[0] + sum(
                x["weight"] for x in cache.by_kind.get("Item", {}).values() if x["group"] == g and x["done"])


def test_a_member_that_joins_leaves_or_changes_costs_its_own_part_alone():
    prog = _program()
    cache = fixpoint.Cache()
    ev = _folding(prog, cache)
    use = prog.defs["use"]

    def parts() -> dict:
        """The parts kept, by member, of the one entry asked."""
        (_, _, _, _, entries), = ev._folds.values()
        assert list(entries) == ["a"]
        return {part[0]["name"]: part for part in entries["a"][0].values()}
    for n in range(5):
        cache.put(_item(f"i{n}", "a", Fraction(1, 10), n, False, 1))
    assert ev.call_def(use, ["a"]) == {"n": 5, "size": Fraction(1, 2), "weight": 10}
    before = parts()
    cache.put(_item("i2", "a", 1, 7, False, 2))  # changed
    cache.put(_item("i5", "a", Fraction(1, 2), 1, False, 1))  # joined
    cache.remove(("Item", "default", "i0"))  # left
    cache.put(_item("i3", "a", Fraction(1, 10), 3, True, 2))  # done: no longer counted
    # i1, i2, i4 and i5
    assert ev.call_def(use, ["a"]) == {"n": 4, "size": exact(Fraction(1, 10) + 1 + Fraction(1, 10) + Fraction(1, 2)),
                                       "weight": 1 + 7 + 4 + 1}
    after = parts()
    assert sorted(after) == ["i1", "i2", "i3", "i4", "i5"] and after["i3"][1] is None
    assert [n for n in after if after[n] is before.get(n)] == ["i1", "i4"]  # the others' parts, kept


def test_a_member_whose_part_is_no_exact_number_is_summed_as_the_list_is():
    # A float's sum depends on the order of its terms: the list is summed afresh.
    prog = _program()
    cache = fixpoint.Cache()
    ev = _folding(prog, cache)
    for n, size in enumerate([0.1, 0.2, 0.3]):
        cache.put(_item(f"i{n}", "a", size, 1, False, 1))
    assert ev.call_def(prog.defs["use"], ["a"]) == ev.call_def(prog.defs["naive"], ["a"])
    assert ev.call_def(prog.defs["use"], ["a"])["size"] == sum([0.1, 0.2, 0.3])


def test_a_member_whose_part_fails_fails_the_fold_as_it_fails_the_list():
    prog = _program()
    cache = fixpoint.Cache()
    ev = _folding(prog, cache)
    cache.put(_item("i0", "a", 1, 5, False, 1))
    assert ev.call_def(prog.defs["ratio"], ["a"]) == 2
    cache.put(_item("i1", "a", 1, 0, False, 1))
    with pytest.raises(EvalError) as e:
        ev.call_def(prog.defs["ratio"], ["a"])
    assert e.value.diagnostics[0].message == "division by zero"
    cache.remove(("Item", "default", "i1"))
    assert ev.call_def(prog.defs["ratio"], ["a"]) == 2


def test_a_fold_in_a_forked_run_starts_from_its_own_objects():
    # The parts are kept with the very objects they were made of: a copy's objects are others.
    import copy

    prog, cache, ev = _one_item()
    assert ev.call_def(prog.defs["use"], ["a"])["n"] == 1
    twin = copy.deepcopy(cache)
    twin.put(_item("i1", "a", 1, 5, False, 1))
    ev.world = twin
    assert ev.call_def(prog.defs["use"], ["a"]) == {"n": 2, "size": 2, "weight": 10}
    ev.world = cache
    assert ev.call_def(prog.defs["use"], ["a"]) == {"n": 1, "size": 1, "weight": 5}


def test_a_fold_is_not_made_where_len_or_sum_is_the_specs_own_def():
    text = TEXT.replace("def part(", "def len(ps: list<Part>) -> int = 0\n\ndef part(")
    prog = check_modules([parse_text(text, "t.konv")])
    assert Evaluator(prog, None).fold_of(prog.defs["use"].body) is None
    assert isinstance(prog.defs["use"].body, A.Call)


def test_an_evaluator_not_folding_keeps_no_parts_and_gives_the_same_values():
    # The naive engine's is the reference incremental runs are checked against: it keeps nothing.
    prog = _program()
    cache = fixpoint.Cache()
    plain, folding = Evaluator(prog, cache), _folding(prog, cache)
    for n in range(3):
        cache.put(_item(f"i{n}", "a", n, n, False, 1))
    assert plain.call_def(prog.defs["use"], ["a"]) == folding.call_def(prog.defs["use"], ["a"]) == \
        {"n": 3, "size": 3, "weight": 3}
    assert plain._folds == {} and folding._folds != {}


def test_an_entry_whose_members_are_all_gone_is_dropped():
    prog, cache, ev = _one_item()
    assert ev.call_def(prog.defs["use"], ["a"])["n"] == 1
    assert ev.call_def(prog.defs["use"], ["b"])["n"] == 0  # never a member: nothing kept
    (_, _, _, _, entries), = ev._folds.values()
    assert list(entries) == ["a"]
    cache.remove(("Item", "default", "i0"))
    assert ev.call_def(prog.defs["use"], ["a"]) == {"n": 0, "size": 0, "weight": 0}
    assert entries == {}


def test_the_schedulers_use_of_a_node_counts_the_pods_pods_on_gives():
    # node_use and admitted_use ask the kind with pods_on's and admitted_on's conditions written
    # out (so that they are folds): they must stay those lists' counts.
    from tests.kube import deployment, node, run
    from tests.test_k8s_job import job

    c = run(node("w1") + node("w2") + deployment("web", replicas=5) + job(extra="completions: 2"))
    prog = load_program(sorted(std_dir().glob("*.konv")), std=False)
    cache = fixpoint.Cache()
    for o in c.objects:
        cache.put(o)
    folding, plain = _folding(prog, fixpoint._TrackingWorld(cache)), Evaluator(prog, cache)
    pods = c.of("Pod")
    assert len(pods) == 7 and sum(p["phase"] == "Succeeded" for p in pods) == 2
    for n in c.of("Node"):
        on = plain.call_def(prog.defs["pods_on"], [n])
        admitted = plain.call_def(prog.defs["admitted_on"], [n["name"]])
        assert folding.call_def(prog.defs["node_use"], [n])["pods"] == len(on)
        assert folding.call_def(prog.defs["admitted_use"], [n])["pods"] == len(admitted)
    assert sum(len(plain.call_def(prog.defs["pods_on"], [n])) for n in c.of("Node")) == 5


def test_a_fold_asked_again_of_the_very_same_members_gives_its_kept_value_and_a_copy_its_own_part():
    # Its members the very objects of the last call: the value kept. A member replaced by a copy
    # equal to it is another object: its part is made again, the others' kept.
    prog = _program()
    cache = fixpoint.Cache()
    ev = _folding(prog, cache)
    use = prog.defs["use"]
    for n in range(3):
        cache.put(_item(f"i{n}", "a", n, n, False, 1))
    first = ev.call_def(use, ["a"])
    assert ev.call_def(use, ["a"]) is first
    (_, _, _, _, entries), = ev._folds.values()
    before = {part[0]["name"]: part for part in entries["a"][0].values()}
    cache.put(dict(cache.get(("Item", "default", "i1"))))
    assert ev.call_def(use, ["a"]) == first == {"n": 3, "size": 3, "weight": 3}
    after = {part[0]["name"]: part for part in entries["a"][0].values()}
    assert [n for n in after if after[n] is before[n]] == ["i0", "i2"]
