"""Explain: why an object is what it is, and why a `pick` found no candidate.

Generic over any rule set: it reads the engine's trace of writes (each with
its controller, rule, rule instance, revision and clock) and re-evaluates
rules from their source. `explain` gives an object's chain of writes and, for
each rule instance that wrote it, that instance's clauses with their source
text and their values in the final state; `why_not` takes a rule ending in
`pick` and tells, for every candidate, the first conjunct of the pick's
`where` that rejects it, aggregated the way Kubernetes words a scheduling
failure (`0/4 nodes are available: 3 fits, 1 …`).

The trace of a reconcile with a data directory is kept beside the store, in
`trace.jsonl` (one JSON object a line: the writes of each run, then an `end`
record with its revision and clock), replaced atomically at the end of each
reconcile, so these views work on a persisted store too.
"""

from __future__ import annotations

import json
import os
import re
from fractions import Fraction
from pathlib import Path

import attrs

from . import ast as A
from .check import Program
from .errors import Diagnostic, KonvergeError
from .files import write_atomically
from .eval import Evaluator, materialize
from .fixpoint import Write, key_text, object_key
from .values import format_duration

TRACE_FILE = "trace.jsonl"
TRACE_FORMAT = "konverge-trace/1"
_MAX_PATHS = 10_000  # bindings walked per instance before giving up


# ---- the state the views look at ---------------------------------------------------------


@attrs.frozen(slots=True)
class State:
    """The objects at the end of a reconcile and the writes that made them."""

    objects: tuple[dict, ...]
    trace: tuple[Write, ...]
    revision: int = 0
    clock: int | Fraction = 0

    def get(self, key: tuple) -> dict | None:
        for o in self.objects:
            if object_key(o["kind"], o.get("namespace"), o["name"]) == key:
                return o
        return None

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]


def state_of(result) -> State:
    """A reconcile `Result` (or a `State`) as a `State`."""
    if isinstance(result, State):
        return result
    return State(tuple(result.objects), tuple(result.trace), result.revision, result.clock)


class _World:
    """The final objects as an evaluator's world, at the final clock."""

    def __init__(self, state: State):
        self.clock = state.clock
        self.by_kind: dict[str, list[dict]] = {}
        for o in sorted(state.objects, key=lambda o: object_key(o["kind"], o.get("namespace"), o["name"])):
            self.by_kind.setdefault(o["kind"], []).append(o)

    def scan(self, kind: str):
        return self.by_kind.get(kind, [])

    def now(self):
        return self.clock


# ---- persisting the trace ------------------------------------------------------------------


def _clock_json(c):
    c = Fraction(c)
    return c.numerator if c.denominator == 1 else str(c)


def _clock_value(v):
    return Fraction(v) if isinstance(v, str) else v


def _write_json(w: Write) -> dict:
    d = attrs.asdict(w)
    d["clock"] = _clock_json(w.clock)
    return d


def persist_trace(store, result) -> None:
    """Append a reconcile's writes to `trace.jsonl` in the store's data directory.

    Does nothing for an in-memory or read-only store. The file is replaced
    atomically (a crash leaves the old or the new file), and calling this
    twice for the same result appends it once."""
    data_dir = getattr(store, "data_dir", None)
    if data_dir is None or getattr(store, "read_only", False):
        return
    path = Path(data_dir) / TRACE_FILE
    old = path.read_text(encoding="utf-8") if path.exists() else json.dumps({"format": TRACE_FORMAT}) + "\n"
    end = {"end": {"revision": result.revision, "clock": _clock_json(result.clock), "steps": result.steps,
                   "writes": len(result.trace), "converged": result.converged}}
    end_line = json.dumps(end, sort_keys=True)
    if old.rstrip("\n").rsplit("\n", 1)[-1] == end_line:
        return  # this result is already there
    lines = [json.dumps(_write_json(w), sort_keys=True) for w in result.trace]
    text = old + "".join(line + "\n" for line in lines) + end_line + "\n"
    write_atomically(path, text, code="E202", what="the trace")


def read_trace(data_dir: str) -> tuple[tuple[Write, ...], int | Fraction]:
    """The writes recorded in a data directory, and the clock at the end of the last run."""
    path = Path(data_dir) / TRACE_FILE
    if not path.exists():
        return (), 0
    writes: list[Write] = []
    clock: int | Fraction = 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            raise KonvergeError(Diagnostic("E202", f"line {n} of the trace is not JSON", file=str(path),
                                           hint="the trace is rewritten by the next reconcile; delete it to start "
                                                "afresh")) from None
        if "end" in d:
            clock = _clock_value(d["end"].get("clock", 0))
        elif "verb" in d:
            d["clock"] = _clock_value(d["clock"])
            writes.append(Write(**{f.name: d.get(f.name) for f in attrs.fields(Write) if f.name in d}))
    return tuple(writes), clock


def load_state(data_dir: str) -> State:
    """The objects of a persisted store (opened read-only) with its recorded trace."""
    from .api import decode_object
    from .show import need_data_dir
    from .store import open_store

    need_data_dir(data_dir)
    store = open_store(data_dir, read_only=True)
    try:
        kvs = store.range("/registry/", prefix=True).kvs
        revision = store.revision
    finally:
        store.close()
    objects = []
    for kv in kvs:
        try:
            obj = decode_object(kv)
        except (ValueError, TypeError):
            continue
        if isinstance(obj, dict) and "kind" in obj and "name" in obj:
            objects.append(obj)
    trace, clock = read_trace(data_dir)
    return State(tuple(objects), trace, revision, clock)


# ---- source text --------------------------------------------------------------------------


class Sources:
    """Source text by span, for printing a clause as it was written."""

    def __init__(self):
        self._lines: dict[str, list[str] | None] = {}

    def text(self, node) -> str:
        span = getattr(node, "span", None)
        lines = self._file(span.file) if span is not None and span.line > 0 else None
        if not lines or span.end_line > len(lines):
            return _formatted(node)
        if span.line == span.end_line:
            out = lines[span.line - 1][span.col - 1:span.end_col - 1]
        else:
            parts = [lines[span.line - 1][span.col - 1:]]
            parts += lines[span.line:span.end_line - 1]
            parts.append(lines[span.end_line - 1][:span.end_col - 1])
            out = " ".join(p.strip() for p in parts)
        out = " ".join(re.sub(r"#[^\n\"]*$", "", out).split()) if "#" in out else " ".join(out.split())
        return out or _formatted(node)

    def _file(self, name: str) -> list[str] | None:
        if name not in self._lines:
            try:
                self._lines[name] = Path(name).read_text(encoding="utf-8-sig").split("\n")  # as parse reads it
            except (OSError, UnicodeDecodeError):
                self._lines[name] = None
        return self._lines[name]


def span_text(span) -> str:
    """file:line:col, the file relative to the working directory when it is under it."""
    if span is None or not span.line:
        return ""
    rel = os.path.relpath(span.file) if os.path.isabs(span.file) else span.file
    name = rel if not rel.startswith("..") else span.file
    return f"{name}:{span.line}:{span.col}"


def _formatted(node) -> str:
    from .fmt import _expr, _flat

    try:
        return _flat(_expr(node))
    except Exception:  # no formatter for this node: say what it is
        return type(node).__name__


def short(v, width: int = 60) -> str:
    """A value in one short line: objects by their key, long lists elided."""
    v = materialize(v)
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Fraction):
        return str(v.numerator) if v.denominator == 1 else f"{float(v):g}"
    if isinstance(v, str):
        text = json.dumps(v, ensure_ascii=False)
    elif isinstance(v, dict) and "kind" in v and "name" in v:
        text = key_text(object_key(v["kind"], v.get("namespace"), v["name"]))
    elif isinstance(v, list):
        items = [short(x, width) for x in v[:3]]
        text = "[" + ", ".join(items) + (f", … {len(v)} items" if len(v) > 3 else "") + "]"
    elif isinstance(v, dict):
        text = "{" + ", ".join(f"{k}: {short(x, width)}" for k, x in v.items()) + "}"
    else:
        text = str(v)
    return text if len(text) <= width else text[:width - 1] + "…"


# ---- rules and their instances ----------------------------------------------------------------


_INSTANCE = re.compile(r"^(?P<controller>[^/\[]+)/(?P<rule>[^\[]+)(?:\[(?P<key>.*)\])?$")


def parse_instance(instance: str) -> tuple[str, str, tuple | None]:
    """`controller/rule[Kind/ns/name]` as (controller, rule, primary key or None)."""
    m = _INSTANCE.match(instance)
    if m is None:
        return instance, "", None
    key = None
    if m["key"]:
        parts = m["key"].split("/")
        key = (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], "", "/".join(parts[1:]))
    return m["controller"], m["rule"], key


def find_rule(program: Program, controller: str, rule: str) -> A.Rule | None:
    c = program.controllers.get(controller)
    if c is None:
        return None
    return next((r for r in c.rules if r.name == rule), None)


def split_and(e: A.Expr | None) -> list[A.Expr]:
    """The conjuncts of an `and` chain, left to right."""
    if e is None:
        return []
    if isinstance(e, A.Binary) and e.op == "and":
        return split_and(e.left) + split_and(e.right)
    return [e]


@attrs.frozen(slots=True)
class Condition:
    """One clause of a rule instance, as written, with its value in the final state."""

    clause: str  # "for", "let", "where" or "pick"
    text: str
    value: str
    holds: bool  # false: this is where the instance stops applying


@attrs.frozen(slots=True)
class InstanceWhy:
    instance: str
    rule: str  # controller/rule
    source: str  # file:line of the rule
    exists: bool  # its primary object still exists
    applies: bool  # every condition holds now, for a binding whose actions touch the object
    conditions: tuple[Condition, ...]


def _primary(rule: A.Rule) -> A.KindSource | None:
    first = rule.clauses[0] if rule.clauses else None
    if isinstance(first, A.ForClause) and isinstance(first.source, A.KindSource):
        return first.source
    return None


def instance_why(program: Program, state: State, instance: str, target: tuple | None = None,
                 sources: Sources | None = None) -> InstanceWhy | None:
    """The clauses of a rule instance evaluated in the final state: the binding whose
    actions write `target` if there is one, else the first binding and where it fails."""
    controller, rule_name, pkey = parse_instance(instance)
    rule = find_rule(program, controller, rule_name)
    if rule is None:
        return None
    sources = sources or Sources()
    ev = Evaluator(program, _World(state))
    where = span_text(rule.span)
    src = _primary(rule)
    clauses = list(rule.clauses)
    if src is not None:
        primary = state.get(pkey) if pkey is not None else None
        head = Condition("for", sources.text(clauses[0]), short(primary) if primary else
                         f"{key_text(pkey) if pkey else '?'} no longer exists", primary is not None)
        if primary is None:
            return InstanceWhy(instance, f"{controller}/{rule_name}", where, False, False, (head,))
        env = {src.var: primary}
        clauses = clauses[1:]
        prefix = [head]
    else:
        env, prefix = {}, []
    found: list = []
    first_fail: list = []
    budget = [_MAX_PATHS]
    _walk(program, ev, sources, rule, clauses, env, list(prefix), target, found, first_fail, budget)
    if found:
        return InstanceWhy(instance, f"{controller}/{rule_name}", where, True, True, tuple(found[0]))
    conds = first_fail[0] if first_fail else prefix
    return InstanceWhy(instance, f"{controller}/{rule_name}", where, True, False, tuple(conds))


def _walk(program, ev, sources, rule, clauses, env, conds, target, found, first_fail, budget) -> None:
    if found or budget[0] <= 0:
        return
    if not clauses:
        budget[0] -= 1
        pick_cond, envs = _pick(program, ev, sources, rule, env)
        full = conds + ([pick_cond] if pick_cond else [])
        if target is None or any(_touches(program, ev, rule, e, target) for e in envs):
            found.append(full)
        else:
            _fail_path(first_fail, full + [Condition("then", "its actions", "do not write this object", False)],
                       target)
        return
    c, rest = clauses[0], clauses[1:]
    if isinstance(c, A.ForClause):
        values = list(ev.bindings(c.source, env))
        if not values:
            _fail_path(first_fail, conds + [Condition("for", sources.text(c), "nothing to bind", False)], target)
        for v in values:
            inner = {**env, c.source.var: v}
            _walk(program, ev, sources, rule, rest, inner, conds + [Condition("for", sources.text(c), short(v), True)],
                  target, found, first_fail, budget)
    elif isinstance(c, A.LetClause):
        value = ev.eval(c.value, env)
        _walk(program, ev, sources, rule, rest, {**env, c.name: value},
              conds + [Condition("let", f"let {c.name} = {sources.text(c.value)}", short(value), True)],
              target, found, first_fail, budget)
    else:
        checked, holds = where_conditions(ev, sources, c.cond, env)
        if holds:
            _walk(program, ev, sources, rule, rest, env, conds + checked, target, found, first_fail, budget)
        else:
            _fail_path(first_fail, conds + checked, target)


def where_conditions(ev: Evaluator, sources: Sources, cond: A.Expr, env: dict) -> tuple[list[Condition], bool]:
    """A `where` split at its `and`s, each conjunct with its value, up to the first that fails."""
    out = []
    for c in split_and(cond):
        value = ev.eval(c, env)
        out.append(Condition("where", sources.text(c), short(value), value is True))
        if value is not True:
            return out, False
    return out, True


def _fail_path(first_fail: list, conds: list, target) -> None:
    """Keep the first failing path, preferring one that bound the object being explained."""
    bound = target is not None and any(c.clause == "for" and c.value == key_text(target) for c in conds)
    if not first_fail or (bound and not first_fail[1]):
        first_fail[:] = [conds, bound]


def _pick(program, ev, sources, rule, env) -> tuple[Condition | None, list[dict]]:
    p = rule.pick
    if p is None:
        return None, [env]
    chosen = ev.select(p.source, p.where, p.order, env)
    text = f"pick {p.source.kind.lower()} {p.source.var}" + (f" where {sources.text(p.where)}" if p.where else "")
    if chosen:
        return Condition("pick", text, f"{short(chosen[0][p.source.var])} (then)", True), [chosen[0], env]
    return Condition("pick", text, "none fits (else)", True), [env]


def _touches(program: Program, ev: Evaluator, rule: A.Rule, env: dict, target: tuple) -> bool:
    actions = list(rule.actions)
    if rule.pick is not None:
        actions += list(rule.pick.then) + list(rule.pick.otherwise)
    for a in actions:
        try:
            if isinstance(a, A.SetAction):
                v = env.get(a.path[0])
                if isinstance(v, dict) and "kind" in v and object_key(v["kind"], v.get("namespace"), v["name"]) == target:
                    return True
            elif isinstance(a, A.CreateAction):
                kind = program.kind(a.kind)
                if kind is not None and kind.name == target[0] and materialize(ev.eval(a.name, env)) == target[2]:
                    return True
            elif isinstance(a, A.DeleteAction):
                v = ev.eval(a.target, env)
                if isinstance(v, dict) and "kind" in v and object_key(v["kind"], v.get("namespace"), v["name"]) == target:
                    return True
        except KonvergeError:
            continue  # an action that fails here cannot be the one that wrote the object
    return False


# ---- explain ------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Explanation:
    key: tuple
    object: dict | None  # None: it no longer exists
    writes: tuple[Write, ...]  # in revision order
    declared: str | None  # file:line of the spec declaration, if the spec declares it
    owner: InstanceWhy | None  # the instance that ensures it (managedBy)
    owner_id: str | None
    instances: tuple[InstanceWhy, ...]  # each rule instance that wrote it, first write first
    revision: int
    clock: int | Fraction


def explain(program: Program, result_or_state, kind: str, namespace: str | None, name: str) -> Explanation:
    """Why the object is what it is: its writes, and the conditions of the rule instances behind them."""
    state = state_of(result_or_state)
    info = program.kind(kind)
    kind_name = info.name if info else kind
    if info is not None:
        namespace = None if info.cluster else (namespace or "default")
    key = object_key(kind_name, namespace, name)
    obj = state.get(key)
    writes = tuple(w for w in state.trace if object_key(w.kind, w.namespace, w.name) == key)
    if obj is None and not writes:
        from .names import closest, elsewhere

        # The names it could have meant: the kind's objects in that namespace, there now or written once.
        seen = [*state.of_kind(kind_name), *({"kind": w.kind, "namespace": w.namespace, "name": w.name}
                                             for w in state.trace if w.kind == kind_name)]
        names = sorted({o["name"] for o in seen if o.get("namespace") == namespace})
        guess = closest(name, names)
        where = f" in namespace {namespace}" if namespace else ""
        raise KonvergeError(Diagnostic(
            "E210", f"there is no {kind_name} {key_text(key).split('/', 1)[1]} and no write to one",
            hint=f"did you mean `{guess}`?" if guess else elsewhere(seen, kind_name, name, namespace)
            or (f"{kind_name} objects{where}: " + ", ".join(names[:8]) if names
                else f"there are no {kind_name} objects{where}")))
    sources = Sources()
    declared = next((span_text(d.span) for d in program.objects
                     if getattr(program.kind(d.kind), "name", None) == kind_name and d.name == name
                     and (info is None or info.cluster or (d.namespace or "default") == namespace)), None)
    owner_id = obj.get("managedBy") if obj else None
    owner = instance_why(program, state, owner_id, key, sources) if owner_id else None
    seen: dict[str, InstanceWhy | None] = {}
    for w in writes:
        if w.instance and w.rule and w.actor not in ("spec", "scenario") and w.instance not in seen \
                and w.instance != owner_id:
            seen[w.instance] = instance_why(program, state, w.instance, key, sources)
    return Explanation(key, obj, writes, declared, owner, owner_id,
                       tuple(v for v in seen.values() if v is not None), state.revision, state.clock)


def _clock_text(c) -> str:
    return format_duration(c) if c else "0s"


def render_instance(why: InstanceWhy, indent: str = "    ") -> list[str]:
    width = min(56, max((len(c.text) for c in why.conditions), default=0))
    out = []
    for c in why.conditions:
        mark = "✓" if c.holds else "✗"
        text = f"where {c.text}" if c.clause == "where" else c.text
        out.append(f"{indent}{mark} {text:<{width + 6}}  = {c.value}")
    return out


def render_explanation(x: Explanation) -> str:
    lines = [f"{key_text(x.key)}"]
    if x.object is None:
        last = x.writes[-1] if x.writes else None
        lines.append("  no longer exists" + (f": deleted at revision {last.revision} by {_who(last)}"
                                               if last and last.verb == "delete" else ""))
    else:
        lines.append(f"  exists at revision {x.revision} (resourceVersion {x.object.get('resourceVersion')}, "
                     f"created at revision {x.object.get('createdRevision')}), clock {_clock_text(x.clock)}")
    if x.declared:
        lines.append(f"  declared in the spec at {x.declared}")
    if x.owner_id:
        lines.append(f"  ensured by {x.owner_id}: it is kept equal to that rule's body while the conditions below")
        lines.append("  hold, and deleted when they stop holding (or the instance's object goes away)")
        if x.owner is not None:
            lines.append(f"    rule {x.owner.rule} at {x.owner.source}" if x.owner.source else f"    rule {x.owner.rule}")
            lines.extend(render_instance(x.owner, "    "))
    lines.append("")
    lines.append(f"Writes ({len(x.writes)}):")
    if not x.writes:
        lines.append("  none recorded (a store persisted without its trace?)")
    rows = [(str(w.revision), _clock_text(w.clock), _who(w), w.verb, w.message) for w in x.writes]
    if rows:
        widths = [max(len(r[i]) for r in rows + [("REVISION", "CLOCK", "BY", "VERB", "")]) for i in range(4)]
        header = ("REVISION", "CLOCK", "BY", "VERB")
        lines.append("  " + "  ".join(h.ljust(wd) for h, wd in zip(header, widths)).rstrip())
        for r in rows:
            lines.append(("  " + "  ".join(c.ljust(wd) for c, wd in zip(r[:4], widths)) +
                          (f"  {r[4]}" if r[4] else "")).rstrip())
    if x.instances:
        lines.append("")
        lines.append(f"Why (each writing rule instance's conditions, evaluated at revision {x.revision}):")
        for why in x.instances:
            state = "holds now" if why.applies else ("no longer exists" if not why.exists else "no longer holds")
            lines.append(f"  {why.instance}  [{state}]" + (f"  {why.source}" if why.source else ""))
            lines.extend(render_instance(why, "    "))
    return "\n".join(lines) + "\n"


def _who(w: Write) -> str:
    if w.actor == "spec":
        return "spec (kubectl apply)"
    if w.actor == "scenario":
        return f"scenario {w.rule}" if w.rule and w.rule != "scenario" else "scenario"
    return w.instance or f"{w.actor}/{w.rule}"


# ---- why not ------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Verdict:
    """One candidate of a pick, and the first conjunct of its `where` that rejected it."""

    candidate: str  # its key text
    name: str
    failed: str | None  # the conjunct's text, or the def it calls; None: it fits
    conjunct: str | None  # the conjunct's source text
    detail: str | None  # inside a def whose body is an `and` chain: the first failing conjunct there


@attrs.frozen(slots=True)
class WhyNot:
    rule: str
    instance: str
    applies: bool  # the rule's clauses before the pick hold for this object
    conditions: tuple[Condition, ...]
    kind: str  # the candidates' kind
    verdicts: tuple[Verdict, ...]
    message: str  # "0/4 nodes are available: 2 …, 1 …."


def why_not(program: Program, state, rule: str | A.Rule, primary_object) -> WhyNot:
    """For a rule ending in `pick`, why each candidate was or was not picked for an object."""
    state = state_of(state)
    if isinstance(rule, A.Rule):
        controller = next((c for c, d in program.controllers.items() if rule in d.rules), "?")
        r, rule_id = rule, f"{controller}/{rule.name}"
    else:
        controller, _, rule_name = rule.partition("/")
        r, rule_id = find_rule(program, controller, rule_name), rule
        if r is None:
            from .names import closest

            known = [f"{c}/{x.name}" for c, d in program.controllers.items() for x in d.rules]
            guess = closest(rule, known)
            raise KonvergeError(Diagnostic("E211", f"there is no rule `{rule}`",
                                           hint=f"did you mean `{guess}`?" if guess else "name it controller/rule"))
    if r.pick is None:
        raise KonvergeError(Diagnostic("E211", f"rule `{rule_id}` does not end in `pick`", span=r.span,
                                       hint="why-not explains the candidates of a pick"))
    if isinstance(primary_object, dict):
        key = object_key(primary_object["kind"], primary_object.get("namespace"), primary_object["name"])
    elif isinstance(primary_object, str):
        key = parse_instance(f"x/y[{primary_object}]")[2]
    else:
        key = primary_object
    instance = f"{rule_id}[{key_text(key)}]" if key else rule_id
    sources = Sources()
    ev = Evaluator(program, _World(state))
    src = _primary(r)
    clauses = list(r.clauses)
    env: dict = {}
    conds: list[Condition] = []
    if src is not None:
        obj = state.get(key) if key else None
        if obj is None:
            raise KonvergeError(Diagnostic("E210", f"{key_text(key) if key else 'the object'} does not exist"))
        env[src.var] = obj
        conds.append(Condition("for", sources.text(clauses[0]), short(obj), True))
        clauses = clauses[1:]
    applies = True
    for c in clauses:
        if isinstance(c, A.ForClause):
            values = list(ev.bindings(c.source, env))
            if not values:
                conds.append(Condition("for", sources.text(c), "nothing to bind", False))
                applies = False
                break
            env[c.source.var] = values[0]
            conds.append(Condition("for", sources.text(c), short(values[0]), True))
        elif isinstance(c, A.LetClause):
            env[c.name] = ev.eval(c.value, env)
            conds.append(Condition("let", f"let {c.name} = {sources.text(c.value)}", short(env[c.name]), True))
        else:
            checked, holds = where_conditions(ev, sources, c.cond, env)
            conds.extend(checked)
            applies = applies and holds
    p = r.pick
    kind = ev.kind_name(p.source.kind)
    conjuncts = split_and(p.where)
    verdicts = []
    for cand in ev.bindings(p.source, env):
        inner = {**env, p.source.var: cand}
        failed = conjunct = detail = None
        for c in conjuncts:
            if ev.eval(c, inner) is not True:
                conjunct = sources.text(c)
                failed = c.fn if isinstance(c, A.Call) and c.fn in program.defs else conjunct
                detail = _inner_failure(program, ev, sources, c, inner)
                break
        name = cand.get("name", "?") if isinstance(cand, dict) else short(cand)
        verdicts.append(Verdict(short(cand), name, failed, conjunct, detail))
    plural = kind.lower() + "s"
    fits = sum(1 for v in verdicts if v.failed is None)
    counts: dict[str, int] = {}
    for v in verdicts:
        if v.failed is not None:
            counts[v.failed] = counts.get(v.failed, 0) + 1
    message = f"{fits}/{len(verdicts)} {plural} are available"
    message += (": " + ", ".join(sorted(f"{n} {why}" for why, n in counts.items())) + ".") if counts else "."
    return WhyNot(rule_id, instance, applies, tuple(conds), kind, tuple(verdicts), message)


def _inner_failure(program, ev, sources, e, env, depth: int = 0) -> str | None:
    """Inside a def whose body is an `and` chain, the first conjunct that fails."""
    if depth > 5 or not isinstance(e, A.Call) or e.fn not in program.defs:
        return None
    d = program.defs[e.fn]
    parts = split_and(d.body)
    if len(parts) < 2:
        return None
    inner = {prm.name: ev.eval(a, env) for prm, a in zip(d.params, e.args)}
    for c in parts:
        if ev.eval(c, inner) is not True:
            deeper = _inner_failure(program, ev, sources, c, inner, depth + 1)
            label = c.fn if isinstance(c, A.Call) and c.fn in program.defs else sources.text(c)
            return f"{label} › {deeper}" if deeper else label
    return None


def render_why_not(w: WhyNot) -> str:
    lines = [f"{w.instance}"]
    lines.extend(render_instance(attrs.evolve(_as_instance(w)), "  "))
    if not w.applies:
        lines.append("  (the rule does not apply to this object now; the candidates are shown as if it did)")
    lines.append(w.message)
    name_w = max([len(w.kind.upper()), *(len(v.name) for v in w.verdicts)])
    lines.append(f"  {w.kind.upper():<{name_w}}  FAILED")
    for v in w.verdicts:
        what = "— (fits)" if v.failed is None else v.failed
        if v.failed is not None and v.conjunct and v.conjunct != v.failed:
            what += f"  ({v.conjunct})"
        if v.detail:
            what += f"  › {v.detail}"
        lines.append(f"  {v.name:<{name_w}}  {what}")
    return "\n".join(lines) + "\n"


def _as_instance(w: WhyNot) -> InstanceWhy:
    return InstanceWhy(w.instance, w.rule, "", True, w.applies, w.conditions)


__all__ = [
    "Condition", "Explanation", "InstanceWhy", "State", "TRACE_FILE", "Verdict", "WhyNot", "explain",
    "instance_why", "load_state", "parse_instance", "persist_trace", "read_trace", "render_explanation",
    "render_why_not", "short", "split_and", "state_of", "why_not",
]
