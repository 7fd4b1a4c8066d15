"""The parser turns every construct of the language into its AST node, with spans."""

import pytest

from engine import ast as A
from engine.cli import main
from engine.errors import KonvergeError
from engine.parse import parse_file, parse_text


def one(text: str):
    m = parse_text(text, "t.konv")
    assert len(m.decls) == 1
    return m.decls[0]


def expr(text: str):
    return one(f'invariant "x" {{ {text} }}').cond


def test_import_names_a_path():
    assert one('import "std"') == A.Import("std")


def test_kind_with_typed_fields_defaults_and_optionals():
    k = one("cluster kind Node { cpu: quantity  labels: map<string> = {}  cidr: cidr?  taints: list<Taint> = [] }")
    assert k.cluster and k.name == "Node"
    assert k.fields[0] == A.FieldDecl("cpu", A.TypeRef("quantity"))
    assert k.fields[1] == A.FieldDecl("labels", A.TypeRef("map", (A.TypeRef("string"),)), A.MapLit(()))
    assert k.fields[2].type == A.TypeRef("cidr", optional=True)
    assert k.fields[3].type.args == (A.TypeRef("Taint"),)


def test_namespaced_kind_and_record():
    assert not one("kind Pod { node: string? }").cluster
    assert one("record Taint { key: string }") == A.RecordDecl("Taint", (A.FieldDecl("key", A.TypeRef("string")),))


def test_object_with_namespace_fields_blocks_and_named_items():
    o = one('deployment web in shop { replicas: 3  labels { app: "web" "app.kubernetes.io/name": "x" }'
            '  container nginx { image: "nginx:1.27" cpu: 250m } }')
    assert (o.kind, o.name, o.namespace) == ("deployment", "web", "shop")
    assert o.entries[0] == A.FieldEntry("replicas", A.Number("3"))
    assert o.entries[1].entries[1].key == "app.kubernetes.io/name"
    assert o.entries[2] == A.ItemEntry("container", "nginx", (
        A.FieldEntry("image", A.String("nginx:1.27")), A.FieldEntry("cpu", A.Unit("250", "m"))))


def test_object_names_may_hold_dashes_and_dots_or_be_quoted():
    assert one("node worker-1.eu { cpu: 1 }").name == "worker-1.eu"
    assert one('node "worker 1" { cpu: 1 }').name == "worker 1"


@pytest.mark.parametrize("text, node", [
    ("250m", A.Unit("250", "m")), ("2Gi", A.Unit("2", "Gi")), ("1.5", A.Number("1.5")),
    ("30s", A.Unit("30", "s")), ("10.0.0.1", A.IPLit("10.0.0.1")), ("10.96.0.0/12", A.CIDRLit("10.96.0.0/12")),
    ('"a\\"b"', A.String('a"b')), ("true", A.Bool(True)), ("none", A.NoneLit()),
])
def test_literals(text, node):
    assert expr(text) == node


def test_precedence_and_associativity():
    assert expr("a + b * c") == A.Binary("+", A.Name("a"), A.Binary("*", A.Name("b"), A.Name("c")))
    assert expr("a - b - c") == A.Binary("-", A.Binary("-", A.Name("a"), A.Name("b")), A.Name("c"))
    assert expr("not a and b or c") == A.Binary(
        "or", A.Binary("and", A.Unary("not", A.Name("a")), A.Name("b")), A.Name("c"))
    assert expr("-x.y[0]") == A.Unary("-", A.Index(A.Attr(A.Name("x"), "y"), A.Number("0")))


def test_comparisons_membership_and_map_subset():
    assert expr("a not in b") == A.Binary("not in", A.Name("a"), A.Name("b"))
    assert expr("s.selector <= p.labels").op == "<="
    with pytest.raises(KonvergeError):
        expr("a < b < c")  # comparisons do not chain


def test_calls_aggregates_and_comprehensions():
    assert expr("count(pod p where p.ready)") == A.Call("count", (
        A.Comprehension(None, A.KindSource("pod", "p"), A.Attr(A.Name("p"), "ready")),))
    assert expr("sum(c.cpu for c in p.containers)") == A.Call("sum", (
        A.Comprehension(A.Attr(A.Name("c"), "cpu"), A.ListSource("c", A.Attr(A.Name("p"), "containers"))),))
    c = expr("[p.name for pod p where p.ready order by p.name desc, p.ip]")
    assert c.order == (A.OrderKey(A.Attr(A.Name("p"), "name"), True), A.OrderKey(A.Attr(A.Name("p"), "ip")))
    assert expr("f(1, 2)") == A.Call("f", (A.Number("1"), A.Number("2")))


def test_list_map_if_and_quantifiers():
    assert expr("[1, 2,]") == A.ListLit((A.Number("1"), A.Number("2")))
    assert expr('{ip: x, "a/b": 1}') == A.MapLit((A.MapItem("ip", A.Name("x")), A.MapItem("a/b", A.Number("1"))))
    assert expr("if a then b else c") == A.IfElse(A.Name("a"), A.Name("b"), A.Name("c"))
    q = expr("forall node n where n.ready: n.cpu > 0")
    assert (q.quantifier, q.source, q.where is not None) == ("forall", A.KindSource("node", "n"), True)
    assert expr("exists c in xs: c").quantifier == "exists"


def test_controller_with_join_let_where_and_actions():
    c = one("""controller gc as collector {
      rule orphan
        for pod p
        for replicaset rs
        where p.owner.name == rs.name
        let n = 1
        set p.phase = "Failed"
        create event p.name + "-x" { reason: "R" }
        ensure endpoints p.name { }
        delete p
    }""")
    assert (c.name, c.account, c.replace) == ("gc", "collector", False)
    r = c.rules[0]
    assert [type(x) for x in r.clauses] == [A.ForClause, A.ForClause, A.WhereClause, A.LetClause]
    assert [type(x) for x in r.actions] == [A.SetAction, A.CreateAction, A.CreateAction, A.DeleteAction]
    assert r.actions[0].path == ("p", "phase")
    assert not r.actions[1].ensure and r.actions[2].ensure and not r.batched


def test_a_rule_may_be_batched_and_batched_stays_a_field_name():
    c = one("""controller tally {
      batched rule count for item i ensure summary "s" { batched: true }
      rule other for item i set i.batched = false
    }""")
    assert [r.batched for r in c.rules] == [True, False]
    assert c.rules[1].actions[0].path == ("i", "batched")


def test_pick_with_order_then_and_else():
    r = one("""replace controller s { rule bind for pod p where p.node == none
      pick node n where n.ready order by n.cpu desc, n.name then set p.node = n.name
      else set p.reason = "Unschedulable" set p.message = "m" }""")
    assert r.replace
    pick = r.rules[0].pick
    assert pick.source == A.KindSource("node", "n")
    assert [k.descending for k in pick.order] == [True, False]
    assert len(pick.then) == 1 and len(pick.otherwise) == 2


def test_def_policy_fault_scenario_invariant():
    d = one("def fits(n: Node, p) -> bool = p.cpu <= n.cpu")
    assert d.params == (A.Param("n", A.TypeRef("Node")), A.Param("p")) and d.returns == A.TypeRef("bool")
    p = one('policy "ports differ" { deny pod p when has_duplicates([1]) because "dup" }')
    assert p.denies[0].because == A.String("dup") and p.denies[0].reason is None
    p = one('policy "ports differ" { deny pod p when has_duplicates([1]) because "dup" as Forbidden\n'
            '  deny pod p when p.node == "x" as NotFound }')
    assert [(d.because, d.reason) for d in p.denies] == [(A.String("dup"), "Forbidden"), (None, "NotFound")]
    f = one("fault scale(deployment d, replicas: int) { set d.replicas = replicas }")
    assert f.target == A.KindSource("deployment", "d") and f.params[0].name == "replicas"
    s = one("""scenario "story" {
      at 1: fail node worker-1
      at 5m: scale deployment shop/web replicas = 5
      at 10s: create pod x in shop { cpu: 1 }
      at 11s: update node worker-1 { ready: true }
      at 12s: delete pod shop/x
      expect eventually count(pod p) == 3 within 5m
      expect always true
    }""")
    assert [type(i.event) for i in s.items[:5]] == [A.FaultEvent, A.FaultEvent, A.CreateEvent, A.UpdateEvent,
                                                     A.DeleteEvent]
    assert s.items[1].event.ref == A.ObjRef("web", "shop")
    assert s.items[5] == A.Expect("eventually", s.items[5].cond, A.Unit("5", "m"))
    assert one('invariant "i" { true }') == A.InvariantDecl("i", A.Bool(True))


def test_policy_clauses_keep_their_order_and_a_mutate_has_its_sets():
    p = one("""policy "defaults" {
      mutate pod p when p.node == none
        set p.node = "n1"
        set p.labels = put(p.labels, "node", p.node)
      deny pod p when p.node == "n2"
      mutate pod q when true set q.phase = "Pending"
    }""")
    assert [type(c) for c in p.clauses] == [A.Mutate, A.Deny, A.Mutate]
    m = p.clauses[0]
    assert m.source == A.KindSource("pod", "p") and m.cond == expr("p.node == none")
    assert [s.path for s in m.sets] == [("p", "node"), ("p", "labels")]
    assert (m.span.line, m.sets[1].span.line, m.span.end_line) == (2, 4, 4)
    assert p.denies == (p.clauses[1],) and p.mutations == (m, p.clauses[2])


def test_a_mutate_needs_when_and_a_set():
    for text in ('policy "x" { mutate pod p set p.a = 1 }', 'policy "x" { mutate pod p when true }'):
        with pytest.raises(KonvergeError) as e:
            parse_text(text, "f.konv")
        assert e.value.diagnostics[0].code == "E007"


def test_keywords_are_contextual_so_fields_may_use_them():
    o = one("node a { order: 1  at: 2  kind: 3 }")
    assert [e.key for e in o.entries] == ["order", "at", "kind"]


def test_every_node_carries_its_span():
    o = parse_text("\n\nnode a {\n  cpu: 4\n}\n", "f.konv").decls[0]
    assert (o.span.file, o.span.line, o.span.col, o.span.end_line) == ("f.konv", 3, 1, 5)
    assert (o.entries[0].value.span.line, o.entries[0].value.span.col) == (4, 8)


def test_comments_are_collected_with_their_lines():
    m = parse_text('# head\nnode a { cpu: 4 }  # tail\n# "not a string"\n', "f.konv")
    assert [(c.text, c.line, c.trailing) for c in m.comments] == [
        ("# head", 1, False), ("# tail", 2, True), ('# "not a string"', 3, False)]


def test_a_hash_inside_a_string_is_not_a_comment():
    m = parse_text('node a { note: "#1" }', "f.konv")
    assert m.comments == () and m.decls[0].entries[0].value == A.String("#1")


def test_syntax_errors_in_several_declarations_are_all_reported():
    with pytest.raises(KonvergeError) as e:
        parse_text("node a { cpu: }\nnode b { cpu: 1 }\nnode c { = }\n", "f.konv")
    assert [(d.span.line, d.code) for d in e.value.diagnostics] == [(1, "E007"), (3, "E007")]


def test_a_byte_order_mark_before_the_text_is_read_past_and_positions_ignore_it(tmp_path, capsys):
    spec = tmp_path / "bom.konv"
    spec.write_bytes(b"\xef\xbb\xbfkind Thing { n: int }  thing t { n: 1  m: 2 }\n")
    assert main(["check", "--no-std", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{spec}:1:40: error[E033]: `Thing` has no field `m`")
    assert "1 | kind Thing { n: int }  thing t { n: 1  m: 2 }\n  |                                        ^\n" in err


def test_walk_yields_every_node_as_its_attrs_fields_hold_them():
    # ast.walk finds a class's fields once (ast._FIELDS): the same nodes, in the same order, as
    # asking attrs at every node.
    import attrs

    from engine.check import std_dir
    from engine.errors import Span

    def reference(roots):
        stack = [roots]
        while stack:
            n = stack.pop()
            if isinstance(n, (list, tuple)):
                stack.extend(n)
                continue
            if not attrs.has(type(n)) or isinstance(n, Span):
                continue
            yield n
            stack.extend(getattr(n, f.name) for f in attrs.fields(type(n)))

    for path in sorted(std_dir().glob("*.konv")):
        module = parse_file(path)
        found = list(A.walk(module))
        assert len(found) > 100 and all(a is b for a, b in zip(found, reference(module), strict=True))
    assert list(A.walk([None, 3, "x", (A.Number("1"),)])) == [A.Number("1")]
