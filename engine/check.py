"""Check: parsed modules → a typed, resolved `Program`.

Resolves imports (the standard control plane in rules/ comes with every spec
unless asked not to), collects declarations across modules, and checks them:
names and types of fields, objects against their kinds, expressions, rules,
policies, faults and scenarios. Every problem becomes a `Diagnostic`; all of
them are reported together.
"""

from __future__ import annotations

import re
import importlib.util
from pathlib import Path

import attrs

from . import ast as A
from .errors import Diagnostic, KonvergeError, Span
from .names import closest
from .parse import TOP_LEVEL_KEYWORDS, parse_file
from .parsecache import parse_found_file
from .reads import reads_world
from .types import (
    ANY, BOOL, BUILTINS, CIDR, DURATION, DURATION_SUFFIXES, FLOAT, INT, IP, LOOSE, NONE,
    PRIMITIVES, QUANTITY, QUANTITY_SUFFIXES, STRING, KindT, ListT, MapT, OptT, Prim,
    RecordT, RefT, Type, assignable, is_any, is_numeric, join, strip,
)
from .values import pattern

# Fields every object has; the API server owns them.
META_FIELDS = {"name": STRING, "namespace": STRING, "resourceVersion": INT}
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
IP_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:/(\d+))?$")


def valid_name(name: str) -> bool:
    """Whether `name` is an object name Kubernetes admits: an RFC 1123 subdomain. Matched whole
    (`$` would let a name end in a newline)."""
    return len(name) <= 253 and _OBJECT_NAME.fullmatch(name) is not None


@attrs.frozen(slots=True)
class EngineFault:
    """A fault in the control plane's machinery rather than in the cluster, aimed at a
    controller by a scenario event (`at 1m: stale controller scheduler lag=3 steps=5`);
    engine/faults.py injects it. Its parameters are ints: (name, default, least, most)."""

    name: str
    params: tuple[tuple[str, int, int, int], ...]
    summary: str


ENGINE_FAULTS = {f.name: f for f in (
    EngineFault("partial", (("writes", 1, 0, 20),),
                "it crashes part-way through its next rule firing with more writes: the first land, "
                "the rest are lost, and it restarts"),
    EngineFault("stale", (("lag", 3, 1, 20), ("steps", 5, 1, 1000)),
                "for the next `steps` steps it reads its cache `lag` changes behind the store"),
    EngineFault("drop", (("events", 1, 1, 20),),
                "its watch loses the next `events` events; its cache stays wrong until it relists"),
    EngineFault("reject", (("requests", 1, 1, 20),),
                "the API server refuses its next `requests` requests with a transient error (500); "
                "it retries after a back-off"),
)}
# The word an event aims an engine fault with (`stale controller NAME`): a fault event naming
# `controller` is always one of the engine's, whatever kinds the program declares.
ENGINE_FAULT_KIND = "controller"


def std_dir() -> Path:
    """rules/: installed beside the package as `engine.rules`, or in a source checkout."""
    return data_dir("engine.rules", "rules")


def data_dir(package: str, checkout_name: str) -> Path:
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / checkout_name


# ---- the checked program -------------------------------------------------------


@attrs.frozen(slots=True)
class FieldInfo:
    name: str
    type: Type
    default: A.Expr | None
    required: bool
    span: Span


@attrs.frozen(slots=True)
class KindInfo:
    name: str
    cluster: bool
    fields: dict[str, FieldInfo]
    decl: A.KindDecl


@attrs.frozen(slots=True)
class RecordInfo:
    name: str
    fields: dict[str, FieldInfo]
    decl: A.RecordDecl


@attrs.frozen(slots=True)
class Program:
    modules: tuple[A.Module, ...]
    kinds: dict[str, KindInfo]
    records: dict[str, RecordInfo]
    objects: tuple[A.ObjectDecl, ...]
    controllers: dict[str, A.ControllerDecl]
    defs: dict[str, A.DefDecl]
    policies: tuple[A.PolicyDecl, ...]
    faults: dict[str, A.FaultDecl]
    scenarios: dict[str, A.ScenarioDecl]
    invariants: tuple[A.InvariantDecl, ...]  # of the state: after every step, or at rest
    warnings: tuple[Diagnostic, ...]
    # How each `Unit` literal reads (`5m`: "quantity" milli, or "duration" minutes),
    # keyed by id() of the node, which the program keeps alive.
    unit_types: dict[int, str] = attrs.field(eq=False, repr=False)
    # Invariants of a step, which call `before`: each is `forall KIND x …` (or an `and` of
    # them), checked after every step on the objects that step created or changed — an
    # evaluator needs the versions the step replaced to run them (engine.fixpoint._History).
    transitions: tuple[A.InvariantDecl, ...] = ()
    # The kinds (as their denies name them) of which a policy's deny calls `before`: a write of
    # one must say what it replaces (engine.api).
    looks_back: frozenset[str] = frozenset()
    # The evaluator's generated code, by id() of the expression it evaluates (engine.eval._compile),
    # shared by the program's evaluators.
    generated: dict[int, tuple] = attrs.field(factory=dict, eq=False, repr=False)

    def kind(self, ref: str) -> KindInfo | None:
        return self.kinds.get(ref) or _kind_by_lower(self.kinds, ref)

    def loose_fields(self, kind: str) -> frozenset[str]:
        """The fields of `kind` that may hold values `==` calls equal and the language tells apart
        (types.LOOSE: 1 and 1.0 in a float or `any` field, 1 and true in an `any`, 0.0 and -0.0)."""
        info = self.kind(kind)
        return frozenset(f for f, d in (info.fields.items() if info is not None else ())
                         if self.may_hold(d.type, LOOSE))

    def may_hold(self, t, leaves: frozenset, _seen: frozenset = frozenset()) -> bool:
        """Whether a value of type `t` may hold one of the types `leaves` (as itself, in a list
        or a map, or in a field of a record or of an object a field holds)."""
        if isinstance(t, OptT):
            return self.may_hold(t.inner, leaves, _seen)
        if isinstance(t, ListT):
            return self.may_hold(t.elem, leaves, _seen)
        if isinstance(t, MapT):
            return self.may_hold(t.value, leaves, _seen)
        if isinstance(t, RecordT | KindT):
            found = self.records.get(t.name) if isinstance(t, RecordT) else self.kind(t.name)
            return t.name not in _seen and found is not None and any(
                self.may_hold(f.type, leaves, _seen | {t.name}) for f in found.fields.values())
        return t in leaves

    def scenario(self, name: str, where: str) -> A.ScenarioDecl:
        """The scenario of that name, or a user error naming the closest one."""
        found = self.scenarios.get(name)
        if found is None:
            guess = closest(name, self.scenarios)
            raise KonvergeError(Diagnostic(
                "E060", f'no scenario named "{name}"', file=where,
                hint=f'did you mean "{guess}"?' if guess else
                "declared: " + (", ".join(f'"{n}"' for n in self.scenarios) or "none")))
        return found


def _count(n: int, word: str, plural: str | None = None) -> str:
    if plural is not None:
        return f"{n} {word if n == 1 else plural}"
    return f"{n} {word if n == 1 else word + 's'}"


def key_span(e: A.Entry) -> Span:
    """The span of an entry's key alone, for diagnostics about the key."""
    s = e.span
    return Span(s.file, s.line, s.col, s.line, s.col + len(e.key))


def _kind_by_lower(kinds: dict[str, KindInfo], ref: str) -> KindInfo | None:
    low = ref.lower()
    for k in kinds.values():
        if k.name.lower() == low:
            return k
    return None


# ---- loading modules with their imports ------------------------------------------


def load_program(paths: list[str | Path], *, std: bool = True) -> Program:
    """Parse the files, follow their imports and check the whole program."""
    modules, diagnostics = load_modules(paths, std=std)
    if diagnostics:
        raise KonvergeError(diagnostics)
    return check_modules(modules)


def check_files(paths: list[str | Path], *, std: bool = True) -> list[Program]:
    """Check each file as its own program — a spec is one cluster — with the standard
    control plane (parsed once). Files of the standard control plane itself are
    checked together. Raises one KonvergeError with every file's diagnostics."""
    std_set = {f.resolve() for f in std_dir().glob("*.konv")}
    groups: list[list[str | Path]] = []
    in_std = [p for p in paths if Path(p).resolve() in std_set]
    if in_std:
        groups.append(in_std)
    groups.extend([p] for p in paths if Path(p).resolve() not in std_set)
    cache: dict[Path, A.Module] = {}
    programs: list[Program] = []
    diagnostics: dict[Diagnostic, None] = {}  # ordered, without the repeats std errors would bring
    for group in groups:
        modules, errors = load_modules(group, std=std, cache=cache)
        if errors:
            diagnostics.update(dict.fromkeys(errors))
            continue
        try:
            programs.append(check_modules(modules))
        except KonvergeError as e:
            diagnostics.update(dict.fromkeys(e.diagnostics))
    if any(d.severity == "error" for d in diagnostics):
        raise KonvergeError(list(diagnostics))
    return programs


def load_modules(paths: list[str | Path], *, std: bool = True,
                 cache: dict | None = None) -> tuple[list[A.Module], list[Diagnostic]]:
    """Modules in dependency order (imports before importers), and any load errors."""
    loader = _Loader(cache, {Path(p).resolve() for p in paths})
    std_files = sorted(std_dir().glob("*.konv"))
    std_set = {f.resolve() for f in std_files}
    wants_std = std and (not paths or any(Path(p).resolve() not in std_set for p in paths))
    if wants_std:
        for f in std_files:
            loader.visit(f, None)
    for p in paths:
        loader.visit(Path(p), None, display=str(p))
    return loader.order, loader.diagnostics


class _Loader:
    def __init__(self, cache: dict | None = None, named: set[Path] = frozenset()):
        self.cache = {} if cache is None else cache
        self.named = named  # the files named on the command line
        self.order: list[A.Module] = []
        self.done: set[Path] = set()
        self.stack: list[Path] = []
        self.diagnostics: list[Diagnostic] = []

    def visit(self, path: Path, via: A.Import | None, display: str | None = None):
        key = path.resolve()
        if key in self.done:
            return
        if key in self.stack:
            cycle = self.stack[self.stack.index(key):] + [key]
            chain = " → ".join(p.name for p in cycle)
            self.diagnostics.append(Diagnostic(
                "E011", f"import cycle: {chain}", span=via.span if via else None,
                file=None if via else str(path), hint="move what both files need into a third file that both import"))
            return
        try:
            module = self.cache.get(key)
            if module is None:
                # The files named on the command line are the user's work in hand, parsed afresh
                # (as the benchmarks measure them); what they import is mostly left alone.
                if key in self.named:
                    module = parse_file(display or str(path))
                else:
                    module = parse_found_file(path)
                self.cache[key] = module
        except KonvergeError as e:
            self.diagnostics.extend(e.diagnostics)
            self.done.add(key)
            return
        if not module.decls:
            self.diagnostics.append(Diagnostic(
                "E012", "this file declares nothing", span=Span(module.path, 1, 1, 1, 1),
                hint="an empty spec is most likely the wrong file; a spec holds kinds, objects, "
                     "controllers, policies or scenarios"))
        self.stack.append(key)
        for decl in module.decls:
            if isinstance(decl, A.Import):
                for target in self.resolve(path, decl):
                    self.visit(target, decl)
        self.stack.pop()
        self.done.add(key)
        self.order.append(module)

    def resolve(self, importer: Path, imp: A.Import) -> list[Path]:
        if imp.path == "std":
            return sorted(std_dir().glob("*.konv"))
        target = (importer.parent / imp.path)
        if target.is_dir():
            return sorted(target.glob("*.konv"))
        if target.is_file():
            return [target]
        siblings = [p.name for p in importer.parent.glob("*.konv")] + ["std"]
        guess = closest(imp.path, siblings)
        self.diagnostics.append(Diagnostic(
            "E010", f"cannot find the import \"{imp.path}\"", span=imp.span,
            hint=f'did you mean "{guess}"?' if guess else
            'imports are paths relative to this file, or "std" for the standard control plane'))
        return []


# ---- checking --------------------------------------------------------------------


def check_modules(modules: list[A.Module]) -> Program:
    checker = _Checker()
    program = checker.run(modules)
    errors = [d for d in checker.diagnostics if d.severity == "error"]
    if errors:
        raise KonvergeError(checker.diagnostics)
    return program


Scope = dict[str, Type]


class _Checker:
    """One pass over a program; collects diagnostics instead of stopping at the first."""

    def __init__(self):
        self.diagnostics: list[Diagnostic] = []
        self.kinds: dict[str, KindInfo] = {}
        self.kinds_lower: dict[str, KindInfo] = {}
        self.records: dict[str, RecordInfo] = {}
        self.defs: dict[str, A.DefDecl] = {}
        self.def_types: dict[str, Type] = {}
        self.def_in_progress: list[str] = []
        self.faults: dict[str, A.FaultDecl] = {}
        self.controller_names: set[str] = set()  # for events aimed at a controller
        self.unit_types: dict[int, str] = {}
        # Where an expression is checked, for `before`: "step" (an invariant checked after every
        # step) or "deny" (a policy's deny: the object as stored before the write), both allowed;
        # "rest" (an `at rest` invariant), "def", or "elsewhere".
        self.looking_back = "elsewhere"
        self.told_before = False  # E056 was given for the declaration being checked: once is enough
        self.deny_kinds_looking_back: set[str] = set()  # Program.looks_back
        self.deny_kind = ""  # the kind of the deny being checked

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None):
        self.diagnostics.append(Diagnostic(code, message, span=span, hint=hint))

    def warn(self, code: str, message: str, span: Span | None, hint: str | None = None):
        self.diagnostics.append(Diagnostic(code, message, span=span, hint=hint, severity="warning"))

    # -- declarations

    def run(self, modules: list[A.Module]) -> Program:
        decls = [d for m in modules for d in m.decls]
        kind_decls = [d for d in decls if isinstance(d, A.KindDecl)]
        record_decls = [d for d in decls if isinstance(d, A.RecordDecl)]
        self._declare_types(kind_decls, record_decls)
        for d in decls:
            if isinstance(d, A.DefDecl):
                self._declare(self.defs, d.name, d, "def")
            elif isinstance(d, A.FaultDecl):
                self._declare(self.faults, d.name, d, "fault")
            elif isinstance(d, A.ControllerDecl):
                self.controller_names.add(d.name)
        self._resolve_fields(kind_decls, record_decls)
        for d in self.defs.values():
            self.def_type(d)

        controllers: dict[str, A.ControllerDecl] = {}
        scenarios: dict[str, A.ScenarioDecl] = {}
        invariants: dict[str, A.InvariantDecl] = {}
        transitions: set[str] = set()
        objects: dict[tuple, A.ObjectDecl] = {}
        policies = []
        for d in decls:
            self.told_before = False
            if isinstance(d, A.ObjectDecl):
                self.check_object(d, objects)
            elif isinstance(d, A.ControllerDecl):
                self.check_controller(d, controllers)
            elif isinstance(d, A.PolicyDecl):
                self.check_policy(d)
                policies.append(d)
            elif isinstance(d, A.FaultDecl):
                self.check_fault(d)
            elif isinstance(d, A.ScenarioDecl):
                self._declare(scenarios, d.name, d, "scenario")
                self.check_scenario(d)
            elif isinstance(d, A.InvariantDecl):
                if self._declare(invariants, d.name, d, "invariant") and self.check_invariant(d):
                    transitions.add(d.name)
        return Program(
            modules=tuple(modules), kinds=self.kinds, records=self.records,
            objects=tuple(objects.values()), controllers=controllers, defs=self.defs,
            policies=tuple(policies), faults=self.faults, scenarios=scenarios,
            invariants=tuple(i for i in invariants.values() if i.name not in transitions),
            warnings=tuple(d for d in self.diagnostics if d.severity == "warning"),
            unit_types=self.unit_types,
            transitions=tuple(i for i in invariants.values() if i.name in transitions),
            looks_back=frozenset(self.deny_kinds_looking_back),
        )

    def check_invariant(self, d: A.InvariantDecl) -> bool:
        """Check an invariant; whether it is one of a step (it calls `before`). Such an invariant
        is checked on the objects a step changed, so it must say which: `forall KIND x …`."""
        self.looking_back = "rest" if d.at_rest else "step"
        try:
            self.expect_bool(d.cond, {}, "an invariant")
        finally:
            self.looking_back = "elsewhere"
        if d.at_rest or not _calls(d.cond, "before", self.defs):
            return False
        for c in _conjuncts(d.cond):
            if not (isinstance(c, A.Quantifier) and c.quantifier == "forall" and isinstance(c.source, A.KindSource)):
                self.error("E057", "an invariant that uses `before` must be `forall KIND x …: …` (or several joined "
                                   "by `and`): it is checked on the objects of that kind each step changed",
                           c.span, hint="put the condition inside `forall KIND x: …` over the kind whose changes it "
                                        "is about, with `before(x)`")
        return True

    def _declare(self, table: dict, name: str, decl, what: str) -> bool:
        if name in table:
            prev = table[name].span
            self.error("E020", f"the {what} `{name}` is declared twice", decl.span,
                       hint=f"the first is at {prev}; rename one of them")
            return False
        table[name] = decl
        return True

    def _declare_types(self, kind_decls, record_decls):
        taken: dict[str, object] = {}
        for d in [*kind_decls, *record_decls]:
            what = "kind" if isinstance(d, A.KindDecl) else "record"
            if d.name in PRIMITIVES or d.name in ("list", "map", "ref"):
                self.error("E020", f"`{d.name}` is a built-in type and cannot be redeclared", d.span)
                continue
            if d.name.lower() in taken:
                self._declare({d.name.lower(): taken[d.name.lower()]}, d.name.lower(), d, what)
                continue
            taken[d.name.lower()] = d
            placeholder = {}
            if isinstance(d, A.KindDecl):
                info = KindInfo(d.name, d.cluster, placeholder, d)
                self.kinds[d.name] = info
                self.kinds_lower[d.name.lower()] = info
            else:
                self.records[d.name] = RecordInfo(d.name, placeholder, d)

    def _resolve_fields(self, kind_decls, record_decls):
        for d in [*kind_decls, *record_decls]:
            info = self.kinds.get(d.name) if isinstance(d, A.KindDecl) else self.records.get(d.name)
            if info is None or info.decl is not d:
                continue
            fields = info.fields
            for f in d.fields:
                if isinstance(d, A.KindDecl) and f.name in META_FIELDS:
                    self.error("E022", f"`{f.name}` is a field every object already has", f.span,
                               hint="remove this field; the API server sets it")
                    continue
                if f.name in fields:
                    self.error("E022", f"the field `{f.name}` is declared twice in `{d.name}`", f.span)
                    continue
                t = self.resolve_type(f.type)
                if f.default is not None:
                    vt = self.expr_type(f.default, {}, t)
                    if not assignable(vt, t):
                        self.error("E035", f"the default of `{f.name}` is a {vt}, but the field is a {t}",
                                   f.default.span)
                required = f.default is None and not f.type.optional
                fields[f.name] = FieldInfo(f.name, t, f.default, required, f.span)

    def resolve_type(self, t: A.TypeRef) -> Type:
        def arity(n_min, n_max):
            if not n_min <= len(t.args) <= n_max:
                want = str(n_min) if n_min == n_max else f"{n_min} or {n_max}"
                self.error("E031", f"`{t.name}` takes {want} type argument(s), not {len(t.args)}", t.span,
                           hint="e.g. `list<string>`, `map<int>`, `ref<Pod>`")
                return False
            return True

        result: Type = ANY
        if t.name == "list":
            if arity(1, 1):
                result = ListT(self.resolve_type(t.args[0]))
        elif t.name == "map":
            if arity(0, 1):
                result = MapT(self.resolve_type(t.args[0]) if t.args else ANY)
        elif t.name == "ref":
            if arity(1, 1):
                k = self.kind_named(t.args[0].name, t.args[0].span)
                result = RefT(k.name) if k else ANY
        elif t.name in PRIMITIVES:
            if arity(0, 0):
                result = Prim(t.name)
        elif t.name in self.records:
            if arity(0, 0):
                result = RecordT(t.name)
        elif t.name in self.kinds:
            if arity(0, 0):
                result = KindT(t.name)
        else:
            known = [*PRIMITIVES, "list", "map", "ref", *self.records, *self.kinds]
            guess = closest(t.name, known)
            self.error("E030", f"unknown type `{t.name}`", t.span,
                       hint=f"did you mean `{guess}`?" if guess else "types are: " + ", ".join(PRIMITIVES[:-1])
                       + ", list<T>, map<T>, ref<Kind>, or a kind or record")
        return OptT(result) if t.optional else result

    def kind_named(self, name: str, span: Span) -> KindInfo | None:
        k = self.kinds.get(name) or self.kinds_lower.get(name.lower())
        if k is None:
            guess = closest(name, [*self.kinds_lower, *TOP_LEVEL_KEYWORDS])
            hint = None
            if guess in TOP_LEVEL_KEYWORDS:
                hint = f"did you mean the keyword `{guess}`?"
            elif guess:
                hint = f"did you mean `{guess}`?"
            elif self.kinds:
                hint = "known kinds: " + ", ".join(sorted(k.lower() for k in self.kinds))
            self.error("E032", f"unknown kind `{name}`", span, hint=hint)
        return k

    # -- objects

    def check_object(self, d: A.ObjectDecl, seen: dict):
        kind = self.kind_named(d.kind, d.span)
        self.check_name(d.name, d.span)
        if kind is None:
            return
        namespace = d.namespace
        if kind.cluster and namespace is not None:
            self.error("E036", f"`{kind.name}` is cluster-scoped, so `{d.name}` cannot be in a namespace", d.span,
                       hint=f"remove `in {namespace}`")
        if not kind.cluster:
            if namespace is None:
                namespace = "default"
            else:
                self.check_name(namespace, d.span)
        key = (kind.name, namespace, d.name)
        if key in seen:
            where = f"{namespace}/{d.name}" if namespace else d.name
            self.error("E021", f"{kind.name.lower()} `{where}` is declared twice", d.span,
                       hint=f"the first is at {seen[key].span}")
        else:
            seen[key] = d
        self.check_entries(d.entries, kind.fields, {}, kind.name, require=True, span=d.span)

    def check_name(self, name: str, span: Span):
        if not valid_name(name):
            self.error("E055", f"`{name}` is not a valid object name", span,
                       hint="names are lower-case letters, digits, '-' and '.', starting and ending "
                            "with a letter or digit, at most 253 characters")

    def check_entries(self, entries, fields: dict[str, FieldInfo], scope: Scope, where: str,
                      require: bool, span: Span, extra: dict[str, Type] | None = None):
        seen: dict[str, A.Entry] = {}
        items: set[tuple[str, str]] = set()
        unknown: list[str] = []
        for e in entries:
            key = e.key
            if isinstance(e, A.ItemEntry) and key not in fields and key + "s" in fields:
                key = key + "s"
            f = fields.get(key)
            ftype = f.type if f else (extra or {}).get(key)
            if ftype is None:
                unknown.append(e.key)
                guess = closest(e.key, [*fields, *(extra or {})])
                self.error("E033", f"`{where}` has no field `{e.key}`", key_span(e),
                           hint=f"did you mean `{guess}`?" if guess else
                           "its fields are: " + ", ".join(fields) if fields else None)
                continue
            if isinstance(e, A.ItemEntry):
                if (key, e.name) in items or (key in seen and not isinstance(seen[key], A.ItemEntry)):
                    self.error("E023", f"`{e.key} {e.name}` is given twice", e.span)
                items.add((key, e.name))
                seen.setdefault(key, e)
                self.check_item(e, key, ftype, scope, require)
                continue
            if key in seen:
                self.error("E023", f"the field `{key}` is given twice", e.span,
                           hint=f"the first is at {seen[key].span}")
                continue
            seen[key] = e
            if isinstance(e, A.FieldEntry):
                vt = self.expr_type(e.value, scope, ftype)
                if not assignable(vt, ftype):
                    self.mismatch(e.value, vt, ftype, f"`{key}`")
            else:
                self.check_block(e, key, ftype, scope, require)
        if require:
            # A misspelt key already has its diagnostic; do not also report the field it meant.
            misspelt = {closest(k, fields) for k in unknown}
            missing = [f.name for f in fields.values()
                       if f.required and f.name not in seen and f.name not in misspelt]
            if missing:
                names = ", ".join(f"`{m}`" for m in missing)
                self.error("E034", f"`{where}` needs {names}, which {'has' if len(missing) == 1 else 'have'} "
                                   "no default", span,
                           hint="add " + ", ".join(f"`{m}: …`" for m in missing))

    def check_block(self, e: A.BlockEntry, key: str, ftype: Type, scope: Scope, require: bool):
        t = strip(ftype)
        if isinstance(t, RecordT):
            rec = self.records[t.name]
            self.check_entries(e.entries, rec.fields, scope, rec.name, require, e.span)
        elif isinstance(t, KindT | MapT) or t == ANY:
            value_t = t.value if isinstance(t, MapT) else ANY
            keys: dict[str, A.Entry] = {}
            for sub in e.entries:
                if sub.key in keys:
                    self.error("E023", f"the key `{sub.key}` is given twice", sub.span)
                keys[sub.key] = sub
                if isinstance(sub, A.FieldEntry):
                    vt = self.expr_type(sub.value, scope, value_t)
                    if not assignable(vt, value_t):
                        self.mismatch(sub.value, vt, value_t, f"`{key}.{sub.key}`")
                elif isinstance(sub, A.BlockEntry):
                    self.check_block(sub, sub.key, value_t, scope, require)
                else:
                    self.error("E037", f"`{sub.key} {sub.name} {{…}}` adds to a list, but `{key}` is a map",
                               sub.span, hint=f"write `{sub.key}: …`")
        else:
            self.error("E038", f"`{key}` is a {ftype}, so it cannot hold a block", e.span,
                       hint=f"write `{key}: value`")

    def check_item(self, e: A.ItemEntry, key: str, ftype: Type, scope: Scope, require: bool):
        t = strip(ftype)
        rec = self.records.get(t.elem.name) if isinstance(t, ListT) and isinstance(t.elem, RecordT) else None
        if rec is None or "name" not in rec.fields:
            self.error("E037", f"`{e.key} {e.name} {{…}}` needs `{key}` to be a list of named records, "
                               f"but it is a {ftype}", e.span,
                       hint=f"write `{key}: [ … ]`")
            return
        fields = {n: f for n, f in rec.fields.items() if n != "name"}
        self.check_entries(e.entries, fields, scope, rec.name, require, e.span)

    def mismatch(self, expr: A.Expr, got: Type, want: Type, what: str):
        hint = None
        if isinstance(expr, A.Unit) and strip(want) in (QUANTITY, DURATION):
            hint = ("quantities use m, k, M, G, Ki, Mi, Gi, …; durations use ms, s, m, h, d")
        elif isinstance(expr, A.Name):
            hint = f'to write text, quote it: "{expr.id}"'
        elif strip(want) == BOOL:
            hint = "write `true` or `false`"
        self.error("E035", f"{what} expects a {want}, but this is a {got}", expr.span, hint=hint)

    # -- expressions

    def expect_bool(self, e: A.Expr, scope: Scope, what: str):
        t = self.expr_type(e, scope, BOOL)
        if not assignable(t, BOOL) and not isinstance(strip(t), KindT):
            self.error("E044", f"{what} must be true or false, but this is a {t}", e.span,
                       hint="compare it, e.g. `x == …`, `x != none`")

    def bind(self, scope: Scope, name: str, t: Type, span: Span) -> Scope:
        if name in scope:
            self.error("E047", f"`{name}` is already bound here", span, hint="use another name")
        new = dict(scope)
        new[name] = t
        return new

    def bind_source(self, src: A.Source, scope: Scope) -> Scope:
        if isinstance(src, A.KindSource):
            k = self.kind_named(src.kind, src.span)
            return self.bind(scope, src.var, KindT(k.name) if k else ANY, src.span)
        it = strip(self.expr_type(src.iterable, scope))
        if isinstance(it, ListT):
            elem = it.elem
        elif isinstance(it, MapT):
            elem = STRING
        elif it == ANY:
            elem = ANY
        else:
            self.error("E043", f"cannot iterate over a {it}", src.iterable.span,
                       hint="iterate over a list, or the keys of a map")
            elem = ANY
        return self.bind(scope, src.var, elem, src.span)

    def expr_type(self, e: A.Expr, scope: Scope, expected: Type | None = None) -> Type:
        method = getattr(self, "t_" + type(e).__name__)
        return method(e, scope, expected)

    def t_Number(self, e, scope, expected):
        return FLOAT if "." in e.text else INT

    def t_Unit(self, e, scope, expected):
        want = strip(expected) if expected is not None else None
        if e.suffix in QUANTITY_SUFFIXES and not (e.suffix == "m" and want == DURATION):
            self.unit_types[id(e)] = "quantity"
            return QUANTITY
        self.unit_types[id(e)] = "duration"
        return DURATION

    def t_String(self, e, scope, expected):
        return STRING

    def t_Bool(self, e, scope, expected):
        return BOOL

    def t_NoneLit(self, e, scope, expected):
        return NONE

    def t_IPLit(self, e, scope, expected):
        self.check_address(e.text, e.span, cidr=False)
        return IP

    def t_CIDRLit(self, e, scope, expected):
        self.check_address(e.text, e.span, cidr=True)
        return CIDR

    def check_address(self, text: str, span: Span, cidr: bool):
        m = IP_RE.match(text)
        bad = m is None or any(int(x) > 255 for x in m.groups()[:4]) or (cidr and int(m.group(5)) > 32)
        if bad:
            what = "CIDR" if cidr else "IP address"
            self.error("E054", f"`{text}` is not a valid {what}", span,
                       hint="each part is 0–255" + (", the prefix 0–32" if cidr else ""))

    def t_Name(self, e, scope, expected):
        t = scope.get(e.id)
        if t is not None:
            return t
        if e.id in self.defs or e.id in BUILTINS:
            self.error("E040", f"`{e.id}` is a function; call it", e.span, hint=f"write `{e.id}(…)`")
            return ANY
        guess = closest(e.id, scope)
        if guess:
            hint = f"did you mean `{guess}`?"
        elif not scope:
            hint = f'to write text, quote it: "{e.id}"'
        else:
            hint = "bind it first with `for`, `let` or `pick`"
        self.error("E040", f"`{e.id}` is not bound here", e.span, hint=hint)
        return ANY

    def t_Attr(self, e, scope, expected):
        base = self.expr_type(e.obj, scope)
        return self.field_type(base, e.name, e.span)

    def field_type(self, base: Type, name: str, span: Span) -> Type:
        opt = isinstance(base, OptT)
        t = strip(base)
        if t == ANY:
            return ANY
        if isinstance(t, MapT):
            return t.value
        if isinstance(t, KindT | RecordT):
            info = self.kinds.get(t.name) if isinstance(t, KindT) else self.records.get(t.name)
            fields = info.fields if info else {}
            meta = META_FIELDS if isinstance(t, KindT) else {}
            if name in meta:
                return meta[name]
            f = fields.get(name)
            if f is None:
                guess = closest(name, [*fields, *meta])
                self.error("E033", f"`{t.name}` has no field `{name}`", span,
                           hint=f"did you mean `{guess}`?" if guess else None)
                return ANY
            return OptT(strip(f.type)) if opt and not isinstance(f.type, OptT) else f.type
        self.error("E043", f"a {base} has no fields, so `.{name}` means nothing here", span)
        return ANY

    def t_Index(self, e, scope, expected):
        base = strip(self.expr_type(e.obj, scope))
        it = self.expr_type(e.index, scope)
        if base == ANY:
            return ANY
        if isinstance(base, ListT):
            if not assignable(it, INT):
                self.error("E035", f"a list index must be an int, not a {it}", e.index.span)
            return base.elem
        if isinstance(base, MapT):
            if not assignable(it, STRING):
                self.error("E035", f"a map key must be a string, not a {it}", e.index.span)
            return base.value
        if base == STRING:
            return STRING
        self.error("E043", f"cannot index a {base}", e.span)
        return ANY

    def t_Call(self, e, scope, expected):
        if e.fn in self.defs:
            d = self.defs[e.fn]
            if len(e.args) != len(d.params):
                self.error("E042", f"`{e.fn}` takes {_count(len(d.params), 'argument')}, but {_count(len(e.args), 'is', 'are')} given",
                           e.span, hint=f"it is declared at {d.span}")
            for a, p in zip(e.args, d.params):
                pt = self.resolve_type(p.type) if p.type else ANY
                at = self.expr_type(a, scope, pt)
                if not assignable(at, pt):
                    self.mismatch(a, at, pt, f"the parameter `{p.name}` of `{e.fn}`")
            for a in e.args[len(d.params):]:
                self.expr_type(a, scope)
            return self.def_type(d, e.span)
        b = BUILTINS.get(e.fn)
        if b is None:
            guess = closest(e.fn, [*BUILTINS, *self.defs])
            self.error("E041", f"unknown function `{e.fn}`", e.span,
                       hint=f"did you mean `{guess}`?" if guess else "declare it with `def`")
            for a in e.args:
                self.expr_type(a, scope)
            return ANY
        n = len(e.args)
        if n < b.min_args or (b.max_args >= 0 and n > b.max_args):
            self.error("E042", f"`{e.fn}` takes {b.params}, but {_count(n, 'argument')} {'is' if n == 1 else 'are'} given", e.span)
            return ANY
        if e.fn == "before" and self.looking_back == "deny":
            self.deny_kinds_looking_back.add(self.deny_kind)
        if e.fn == "before" and self.looking_back not in ("step", "deny") and not self.told_before:
            self.told_before = True
            self.before_misplaced(e)
        args = [self.expr_type(a, scope) for a in e.args]
        return self.builtin_type(e, args)

    def before_misplaced(self, e: A.Call):
        if self.looking_back == "rest":
            self.error("E056", "`before` means nothing in an `at rest` invariant: it looks back on one step, and "
                               "an invariant at rest is checked where the engine rests, after many", e.span,
                       hint="drop `at rest` to check each step's changes, or compare states without `before`")
        elif self.looking_back == "def":
            self.error("E056", "`before` cannot be used in a def: rules and policies call defs, and only an "
                               "invariant checked after every step, or a policy's `deny` on the object a write "
                               "replaces, looks back", e.span,
                       hint="pass `before(x)` to the def as an argument")
        elif self.looking_back == "mutate":
            self.error("E056", "`before` cannot be used in a mutation: a controller predicts what the API server "
                               "stores from the object it writes alone", e.span,
                       hint="refuse the change in a `deny … when … before(x) …`, or write it as a controller rule")
        else:
            self.error("E056", "`before` looks back on the latest step, so it may only be used in an invariant "
                               "checked after every step (or, for the object a write replaces, in a policy's "
                               "`deny`)", e.span,
                       hint="state the change as an `invariant \"…\" { forall KIND x: … before(x) … }`")

    def builtin_type(self, e: A.Call, args: list[Type]) -> Type:
        fn = e.fn
        first = strip(args[0]) if args else ANY
        elem = first.elem if isinstance(first, ListT) else ANY

        def need_list():
            if not isinstance(first, ListT) and first != ANY:
                self.error("E035", f"`{fn}` needs a list, but this is a {args[0]}", e.args[0].span)

        if fn == "count":
            need_list()
            return INT
        if fn == "sum":
            need_list()
            if not is_numeric(elem):
                self.error("E043", f"cannot add up a list of {elem}", e.args[0].span)
            return INT if elem == ANY else strip(elem)
        if fn in ("min", "max"):
            if len(args) == 1:
                need_list()
                return elem
            t = args[0]
            for a in args[1:]:
                t = join(t, a)
            return t
        if fn in ("any", "all"):
            need_list()
            return BOOL
        if fn in ("abs", "ceil", "floor", "round", "log") and not is_numeric(first):
            self.error("E035", f"`{fn}` needs a number, but this is a {args[0]}", e.args[0].span,
                       hint="give it an int, a float, a quantity or a duration; `float(…)` reads a number from text")
            return {"log": FLOAT, "abs": ANY}.get(fn, INT)
        if fn in ("len", "int", "ceil", "floor", "round", "millis", "hash", "cidr_size", "ip_index"):
            return INT
        if fn == "str" or fn == "lower" or fn == "join":
            return STRING
        if fn in ("float", "seconds", "log"):
            return FLOAT
        if fn == "abs":
            return first
        if fn == "keys":
            return ListT(STRING)
        if fn == "values":
            return ListT(first.value) if isinstance(first, MapT) else ListT(ANY)
        if fn in ("put", "without", "only"):
            if not isinstance(first, MapT) and first != ANY:
                self.error("E035", f"`{fn}` needs a map, but this is a {args[0]}", e.args[0].span)
            if fn == "only" and not isinstance(strip(args[1]), ListT) and strip(args[1]) != ANY:
                self.error("E035", f"`only` needs a list of keys, but this is a {args[1]}", e.args[1].span)
            return first if fn in ("without", "only") else MapT(join(first.value, args[2]) if isinstance(first, MapT) else ANY)
        if fn == "get":
            return join(first.value if isinstance(first, MapT) else ANY, args[2])
        if fn == "coalesce":
            t = strip(args[0])
            for a in args[1:]:
                t = join(t, strip(a))
            return t
        if fn == "matches":
            for arg, t, want in ((e.args[0], args[0], OptT(STRING)), (e.args[1], args[1], STRING)):
                if not assignable(t, want):
                    self.error("E035", f"`matches` needs a string, but this is a {t}", arg.span,
                               hint="turn it into text with `str(…)`")
            if isinstance(e.args[1], A.String):
                try:
                    pattern(e.args[1].value)
                except re.error as err:
                    self.error("E061", f"`{e.args[1].value}` is not a regular expression: {err.msg}", e.args[1].span,
                               hint="write it in Python's syntax for regular expressions, which reads the "
                                    "patterns Kubernetes validates names and labels with as they are")
            return BOOL
        if fn in ("has_duplicates", "contains", "startswith", "cidr_contains", "is_ip"):
            return BOOL
        if fn in ("distinct", "sorted"):
            need_list()
            return first
        if fn == "first":
            need_list()
            return elem
        if fn == "range":
            if not assignable(args[0], INT):
                self.error("E035", f"`range` needs an int, but this is a {args[0]}", e.args[0].span,
                           hint="round it with `floor(…)` or `ceil(…)`")
            return ListT(INT)
        if fn == "flatten":
            need_list()
            return elem if isinstance(strip(elem), ListT) else ListT(ANY)
        if fn == "pow":
            return join(strip(args[0]), strip(args[1])) if is_numeric(args[0]) else ANY
        if fn == "type_of":
            return STRING
        if fn == "split":
            return ListT(STRING)
        if fn == "now":
            return DURATION
        if fn == "before":
            if not isinstance(first, KindT) and first != ANY:
                self.error("E035", f"`before` needs an object of a kind, but this is a {args[0]}", e.args[0].span,
                           hint="give it a variable bound by `forall KIND x`")
                return ANY
            return OptT(first) if isinstance(first, KindT) else ANY
        if fn == "cidr_subnet":
            return CIDR
        if fn == "cidr_host":
            return IP
        return ANY

    def def_type(self, d: A.DefDecl, call_span: Span | None = None) -> Type:
        if d.name in self.def_types:
            return self.def_types[d.name]
        if d.name in self.def_in_progress:
            cycle = self.def_in_progress[self.def_in_progress.index(d.name):] + [d.name]
            self.error("E048", "defs may not be recursive: " + " → ".join(cycle), call_span or d.span,
                       hint="evaluation must terminate; use a comprehension or an aggregate instead")
            self.def_types[d.name] = ANY
            return ANY
        self.def_in_progress.append(d.name)
        outer, self.looking_back = (self.looking_back, self.told_before), "def"
        self.told_before = False
        scope: Scope = {}
        for p in d.params:
            scope = self.bind(scope, p.name, self.resolve_type(p.type) if p.type else ANY, p.span)
        ret = self.resolve_type(d.returns) if d.returns else None
        body = self.expr_type(d.body, scope, ret)
        if ret is not None and not assignable(body, ret):
            self.error("E035", f"`{d.name}` should give a {ret}, but its body is a {body}", d.body.span)
        self.looking_back, self.told_before = outer
        self.def_in_progress.pop()
        result = ret or body
        self.def_types[d.name] = result
        return result

    def t_Comprehension(self, e, scope, expected):
        inner = self.bind_source(e.source, scope)
        if e.where is not None:
            self.expect_bool(e.where, inner, "a `where` condition")
        for k in e.order:
            self.expr_type(k.expr, inner)
        if e.element is None:
            return ListT(inner[e.source.var])
        want = strip(expected).elem if expected is not None and isinstance(strip(expected), ListT) else None
        return ListT(self.expr_type(e.element, inner, want))

    def t_ListLit(self, e, scope, expected):
        want = strip(expected).elem if expected is not None and isinstance(strip(expected), ListT) else None
        t: Type | None = None
        for item in e.items:
            it = self.expr_type(item, scope, want)
            if want is not None and not assignable(it, want):
                self.mismatch(item, it, want, "this list")
            t = it if t is None else join(t, it)
        return ListT(want if want is not None else (t or ANY))

    def t_MapLit(self, e, scope, expected):
        want = strip(expected) if expected is not None else None
        if isinstance(want, RecordT):
            rec = self.records[want.name]
            keys = set()
            for item in e.items:
                if item.key in keys:
                    self.error("E023", f"the key `{item.key}` is given twice", item.span)
                keys.add(item.key)
            self.check_fields_of(rec, e.items, scope)
            missing = [f.name for f in rec.fields.values() if f.required and f.name not in keys]
            if missing:
                self.error("E034", f"this `{rec.name}` needs " + ", ".join(f"`{m}`" for m in missing), e.span)
            return want
        value_t = want.value if isinstance(want, MapT) else None
        t: Type | None = None
        keys = set()
        for item in e.items:
            if item.key in scope:
                self.warn("W002", f"the key `{item.key}` is the text \"{item.key}\", not the variable `{item.key}`",
                          item.span, hint=f"for a computed key write `put(m, {item.key}, …)`")
            if item.key in keys:
                self.error("E023", f"the key `{item.key}` is given twice", item.span)
            keys.add(item.key)
            vt = self.expr_type(item.value, scope, value_t)
            t = vt if t is None else join(t, vt)
        return MapT(value_t if value_t is not None else (t or ANY))

    def t_Unary(self, e, scope, expected):
        if e.op == "not":
            self.expect_bool(e.operand, scope, "the operand of `not`")
            return BOOL
        t = self.expr_type(e.operand, scope, expected)
        if not is_numeric(t):
            self.error("E043", f"cannot negate a {t}", e.span)
            return ANY
        return strip(t)

    def t_IfElse(self, e, scope, expected):
        self.expect_bool(e.cond, scope, "an `if` condition")
        return join(self.expr_type(e.then, scope, expected), self.expr_type(e.otherwise, scope, expected))

    def t_Quantifier(self, e, scope, expected):
        inner = self.bind_source(e.source, scope)
        if e.where is not None:
            self.expect_bool(e.where, inner, "a `where` condition")
        self.expect_bool(e.body, inner, f"the body of `{e.quantifier}`")
        return BOOL

    def t_Binary(self, e, scope, expected):
        op = e.op
        if op in ("and", "or"):
            self.expect_bool(e.left, scope, f"an operand of `{op}`")
            self.expect_bool(e.right, scope, f"an operand of `{op}`")
            return BOOL
        # A unit literal beside a typed operand reads in that operand's unit (`5m` vs a duration).
        if isinstance(e.left, A.Unit) and e.left.suffix == "m":
            rt = self.expr_type(e.right, scope)
            lt = self.expr_type(e.left, scope, rt)
        elif op == "+" and isinstance(e.right, A.MapLit):
            lt = self.expr_type(e.left, scope)
            rt = self.record_update(lt, e.right, scope)
        else:
            lt = self.expr_type(e.left, scope)
            rt = self.expr_type(e.right, scope, lt)
        if op in ("==", "!="):
            return BOOL
        if op in ("in", "not in"):
            r = strip(rt)
            ok = (r == ANY or is_any(lt)
                  or (isinstance(r, ListT) and (assignable(lt, r.elem) or assignable(r.elem, lt)))
                  or (isinstance(r, MapT) and assignable(lt, STRING))
                  or (r == STRING and assignable(lt, STRING))
                  or (r == CIDR and assignable(lt, IP)))
            if not ok:
                self.error("E043", f"`{op}` cannot test a {lt} against a {rt}", e.span,
                           hint="`in` tests an element of a list, a key of a map, text in a string "
                                "or an address in a CIDR")
            return BOOL
        l, r = strip(lt), strip(rt)
        if op in ("<", "<=", ">", ">="):
            mapish = (MapT, RecordT)
            if (isinstance(l, mapish) or l == ANY) and (isinstance(r, mapish) or r == ANY) and op in ("<=", ">="):
                return BOOL  # subset: a label selector against labels
            if self.numeric_result(l, r, "+") is not None or (l == r == STRING) or ANY in (l, r):
                return BOOL
            self.error("E043", f"cannot order a {lt} against a {rt}", e.span,
                       hint="`<=` between maps tests a subset (a selector against labels)")
            return BOOL
        if op == "+":
            if isinstance(l, RecordT | KindT) and isinstance(r, MapT):
                return l  # a copy with some fields replaced: `c + {state: "Running"}`
            if l == r == STRING:
                return STRING
            if isinstance(l, ListT) and isinstance(r, ListT):
                return ListT(join(l.elem, r.elem))
            if isinstance(l, MapT) and isinstance(r, MapT):
                return MapT(join(l.value, r.value))
        result = self.numeric_result(l, r, op)
        if result is None:
            hint = "join text with `+` on two strings; convert with `str(…)`" if STRING in (l, r) else None
            self.error("E043", f"`{op}` is not defined for a {lt} and a {rt}", e.span, hint=hint)
            return ANY
        return result

    def record_update(self, base: Type, update: A.MapLit, scope: Scope) -> Type:
        """The right side of `record + {field: value}`: each key a field of the record."""
        b = strip(base)
        info = self.records.get(b.name) if isinstance(b, RecordT) else (
            self.kinds.get(b.name) if isinstance(b, KindT) else None)
        if info is None:
            return self.expr_type(update, scope)
        self.check_fields_of(info, update.items, scope)
        return MapT(ANY)

    def check_fields_of(self, info: RecordInfo | KindInfo, items: tuple[A.MapItem, ...], scope: Scope) -> None:
        """Each `key: value` of a map literal written for a record or kind: a field of it, of its type."""
        for item in items:
            f = info.fields.get(item.key)
            if f is None:
                guess = closest(item.key, info.fields)
                self.error("E033", f"`{info.name}` has no field `{item.key}`", item.span,
                           hint=f"did you mean `{guess}`?" if guess else None)
                self.expr_type(item.value, scope)
                continue
            vt = self.expr_type(item.value, scope, f.type)
            if not assignable(vt, f.type):
                self.mismatch(item.value, vt, f.type, f"`{item.key}`")

    @staticmethod
    def numeric_result(l: Type, r: Type, op: str) -> Type | None:
        if l == ANY or r == ANY:
            if (l == ANY or is_numeric(l) or l == STRING) and (r == ANY or is_numeric(r) or r == STRING):
                return ANY
            return None
        if not (is_numeric(l) and is_numeric(r)):
            return None
        units = {t.name for t in (l, r) if t.name in ("quantity", "duration")}
        if len(units) == 2:
            return None
        if units:
            unit = Prim(units.pop())
            if op == "/" and l == r:
                return FLOAT
            if op in ("+", "-", "%") or (op == "*" and l != r) or (op == "/" and l == unit):
                return unit
            return None
        if op == "/" or FLOAT in (l, r):
            return FLOAT
        return INT

    # -- controllers, policies, faults, scenarios

    def check_controller(self, d: A.ControllerDecl, controllers: dict):
        if d.replace:
            if d.name not in controllers:
                guess = closest(d.name, controllers)
                self.error("E025", f"`replace controller {d.name}`: there is no controller `{d.name}` to replace",
                           d.span, hint=f"did you mean `{guess}`?" if guess else "remove `replace` to add a controller")
                return
            controllers[d.name] = d  # keeps the replaced controller's position
        else:
            if not self._declare(controllers, d.name, d, "controller"):
                return
        rules: dict[str, A.Rule] = {}
        for r in d.rules:
            if r.name in rules:
                self.error("E024", f"the controller `{d.name}` has two rules named `{r.name}`", r.span,
                           hint=f"the first is at {rules[r.name].span}")
            rules[r.name] = r
            self.check_rule(r)

    def check_rule(self, r: A.Rule):
        scope: Scope = {}
        for c in r.clauses:
            if isinstance(c, A.ForClause):
                scope = self.bind_source(c.source, scope)
            elif isinstance(c, A.LetClause):
                scope = self.bind(scope, c.name, self.expr_type(c.value, scope), c.span)
            else:
                self.expect_bool(c.cond, scope, "a `where` condition")
        for a in r.actions:
            self.check_action(a, scope)
        if r.pick is not None:
            p = r.pick
            inner = self.bind_source(p.source, scope)
            if p.where is not None:
                self.expect_bool(p.where, inner, "a `where` condition")
            for k in p.order:
                self.expr_type(k.expr, inner)
            for a in p.then:
                self.check_action(a, inner)
            for a in p.otherwise:
                self.check_action(a, scope)
        self.check_termination(r)

    def check_termination(self, r: A.Rule):
        read = {self.kind_key(c.source.kind) for c in r.clauses
                if isinstance(c, A.ForClause) and isinstance(c.source, A.KindSource)}
        bounded = r.pick is not None or any(isinstance(c, A.WhereClause) for c in r.clauses)
        if bounded:
            return
        for a in r.actions:
            if isinstance(a, A.CreateAction) and not a.ensure and self.kind_key(a.kind) in read:
                self.warn("W001", f"the rule `{r.name}` creates `{a.kind}` objects for every `{a.kind}`, "
                                  "with nothing to bound it, so it may never terminate", a.span,
                          hint="add a `where` that stops once enough exist, or use `ensure`")

    def kind_key(self, name: str) -> str:
        return name.lower()

    def check_action(self, a: A.Action, scope: Scope):
        if isinstance(a, A.SetAction):
            var, *path = a.path
            t = scope.get(var)
            if t is None:
                guess = closest(var, scope)
                self.error("E040", f"`{var}` is not bound here", a.span,
                           hint=f"did you mean `{guess}`?" if guess else None)
                self.expr_type(a.value, scope)
                return
            if not (isinstance(strip(t), KindT) or strip(t) == ANY):
                self.error("E045", f"`set` changes a field of an object, but `{var}` is a {t}", a.span)
                return
            if isinstance(strip(t), KindT) and path[0] in META_FIELDS:
                self.error("E045", f"`{path[0]}` is set by the API server and cannot be changed", a.span)
                return
            for name in path:
                t = self.field_type(t, name, a.span)
            vt = self.expr_type(a.value, scope, t)
            if not assignable(vt, t):
                self.mismatch(a.value, vt, t, f"`{'.'.join(a.path)}`")
        elif isinstance(a, A.CreateAction):
            k = self.kind_named(a.kind, a.span)
            nt = self.expr_type(a.name, scope)
            if not assignable(nt, STRING):
                self.error("E035", f"an object name is a string, but this is a {nt}", a.name.span)
            if k is not None:
                extra = {} if k.cluster else {"namespace": STRING}
                self.check_entries(a.entries, k.fields, scope, k.name, require=True, span=a.span, extra=extra)
        elif isinstance(a, A.DeleteAction):
            t = strip(self.expr_type(a.target, scope))
            if not isinstance(t, KindT) and t != ANY:
                self.error("E046", f"`delete` removes an object, but this is a {t}", a.target.span)

    def check_policy(self, d: A.PolicyDecl):
        for clause in d.clauses:
            scope = self.bind_source(clause.source, {})
            if isinstance(clause, A.Mutate):
                self.check_mutate(clause, scope)
            else:
                self.check_deny(clause, scope)

    def check_deny(self, deny: A.Deny, scope: Scope):
        # A deny may look back: `before(x)` is the object as stored before the write it judges
        # (an update's old object, as ValidateServiceUpdate and its kin compare), none for a create.
        outer, self.looking_back, self.deny_kind = self.looking_back, "deny", deny.source.kind
        self.expect_bool(deny.cond, scope, "a `deny … when` condition")
        if deny.because is not None:
            t = self.expr_type(deny.because, scope)
            if not assignable(t, STRING):
                self.error("E035", f"`because` gives the message, a string, but this is a {t}",
                           deny.because.span)
        self.looking_back = outer
        if deny.reason is not None and deny.reason not in A.DENY_REASONS:
            guess = closest(deny.reason, A.DENY_REASONS)
            self.error("E059", f"`{deny.reason}` is not a reason a deny can answer with", deny.reason_span,
                       hint=f"did you mean `{guess}`?" if guess else "the reasons are " + ", ".join(A.DENY_REASONS))

    def check_mutate(self, m: A.Mutate, scope: Scope):
        # Only the policy's variable is bound, so a `set` can change nothing but the object admitted.
        outer, self.looking_back = self.looking_back, "mutate"
        told = len(self.diagnostics)
        self.expect_bool(m.cond, scope, "a `mutate … when` condition")
        for a in m.sets:
            self.check_action(a, scope)
        self.looking_back = outer
        # A controller predicts what the API server stores from the object alone (it compares
        # with `defaulted`), and is woken only by what it read: a mutation reads nothing else.
        found = reads_world(self.defs, (m.cond, tuple(a.value for a in m.sets)))
        if found is not None and not any(d.code == "E056" for d in self.diagnostics[told:]):
            self.error("E058", "a mutation may read only the object it admits, but this reads other objects, "
                       "the clock or an earlier state", found.span,
                       hint="write what depends on other objects as a controller rule instead")

    def check_fault(self, d: A.FaultDecl):
        scope = self.bind_source(d.target, {})
        for p in d.params:
            scope = self.bind(scope, p.name, self.resolve_type(p.type) if p.type else ANY, p.span)
        for a in d.actions:
            self.check_action(a, scope)

    def check_time(self, t: A.Number | A.Unit):
        if isinstance(t, A.Unit):
            if t.suffix not in DURATION_SUFFIXES:
                self.error("E049", f"`{t.number}{t.suffix}` is not a time", t.span,
                           hint="times are seconds (`30`) or durations: ms, s, m, h, d")
            else:
                self.unit_types[id(t)] = "duration"

    def check_scenario(self, d: A.ScenarioDecl):
        for item in d.items:
            if isinstance(item, A.Expect):
                self.expect_bool(item.cond, {}, f"`expect {item.mode}`")
                if item.within is not None:
                    self.check_time(item.within)
                continue
            self.check_time(item.time)
            ev = item.event
            if isinstance(ev, A.FaultEvent):
                self.check_fault_event(ev)
            elif isinstance(ev, A.CreateEvent):
                k = self.kind_named(ev.kind, ev.span)
                self.check_name(ev.name, ev.span)
                if k is not None:
                    if k.cluster and ev.namespace is not None:
                        self.error("E036", f"`{k.name}` is cluster-scoped, so it cannot be in a namespace", ev.span)
                    self.check_entries(ev.entries, k.fields, {}, k.name, require=True, span=ev.span)
            elif isinstance(ev, A.UpdateEvent):
                k = self.kind_named(ev.kind, ev.span)
                if k is not None:
                    self.check_entries(ev.entries, k.fields, {}, k.name, require=False, span=ev.span)
            else:
                self.kind_named(ev.kind, ev.span)

    def check_fault_event(self, ev: A.FaultEvent):
        if ev.kind == ENGINE_FAULT_KIND:
            self.check_engine_fault(ev)
            return
        f = self.faults.get(ev.fault)
        if f is None:
            if ev.fault in ENGINE_FAULTS:
                self.error("E050", f"`{ev.fault}` is a fault of the engine, aimed at a controller", ev.span,
                           hint=f"write `{ev.fault} {ENGINE_FAULT_KIND} NAME`, NAME one of the program's controllers")
                return
            guess = closest(ev.fault, [*self.faults, "create", "update", "delete"])
            self.error("E050", f"unknown fault `{ev.fault}`", ev.span,
                       hint=f"did you mean `{guess}`?" if guess else
                       "faults are declared with `fault NAME(kind var) { … }`; known: " + ", ".join(sorted(self.faults)))
            return
        k = self.kind_named(ev.kind, ev.span)
        fk = self.kinds.get(f.target.kind) or self.kinds_lower.get(f.target.kind.lower())
        if k is not None and fk is not None and k is not fk:
            self.error("E051", f"the fault `{f.name}` acts on a {fk.name.lower()}, not a {k.name.lower()}", ev.span,
                       hint=f"write `{f.name} {fk.name.lower()} NAME`")
        params = {p.name: p for p in f.params}
        given = set()
        for arg in ev.args:
            p = params.get(arg.name)
            if p is None:
                guess = closest(arg.name, params)
                self.error("E052", f"the fault `{f.name}` has no parameter `{arg.name}`", arg.span,
                           hint=f"did you mean `{guess}`?" if guess else
                           ("its parameters: " + ", ".join(params)) if params else "it takes no parameters")
                continue
            given.add(arg.name)
            pt = self.resolve_type(p.type) if p.type else ANY
            vt = self.expr_type(arg.value, {}, pt)
            if not assignable(vt, pt):
                self.mismatch(arg.value, vt, pt, f"`{arg.name}`")
        misspelt = {closest(a.name, params) for a in ev.args if a.name not in params}
        missing = [n for n in params if n not in given and n not in misspelt]
        if missing:
            self.error("E052", f"the fault `{f.name}` needs " + ", ".join(f"`{m}=…`" for m in missing), ev.span)

    def check_engine_fault(self, ev: A.FaultEvent):
        """`FAULT controller NAME arg=N…`: a fault of the engine (ENGINE_FAULTS) aimed at a controller."""
        f = ENGINE_FAULTS.get(ev.fault)
        known = ", ".join(sorted(ENGINE_FAULTS))
        if f is None:
            declared = self.faults.get(ev.fault)
            if declared is not None:
                self.error("E051", f"the fault `{ev.fault}` acts on a {declared.target.kind.lower()}, "
                                   f"not a {ENGINE_FAULT_KIND}", ev.span,
                           hint=f"write `{ev.fault} {declared.target.kind.lower()} NAME`; the faults aimed at a "
                                f"controller are the engine's: {known}")
            else:
                guess = closest(ev.fault, ENGINE_FAULTS)
                self.error("E050", f"unknown fault `{ev.fault}` for a {ENGINE_FAULT_KIND}", ev.span,
                           hint=f"did you mean `{guess}`?" if guess else f"the faults aimed at a controller: {known}")
            return
        if ev.ref.namespace is not None:
            self.error("E053", "a controller has no namespace", ev.ref.span,
                       hint=f"write `{ev.fault} {ENGINE_FAULT_KIND} {ev.ref.name}`")
        elif ev.ref.name not in self.controller_names:
            guess = closest(ev.ref.name, self.controller_names)
            self.error("E053", f"no controller named `{ev.ref.name}`", ev.ref.span,
                       hint=f"did you mean `{guess}`?" if guess else
                       "controllers: " + (", ".join(sorted(self.controller_names)) or "none"))
        params = {p[0]: p for p in f.params}
        given: set[str] = set()
        for arg in ev.args:
            p = params.get(arg.name)
            if p is None:
                guess = closest(arg.name, params)
                self.error("E052", f"the fault `{f.name}` has no parameter `{arg.name}`", arg.span,
                           hint=f"did you mean `{guess}`?" if guess else "its parameters: " + ", ".join(params))
                continue
            if arg.name in given:
                self.error("E052", f"`{arg.name}` is given twice", arg.span, hint="keep one")
                continue
            given.add(arg.name)
            _, default, least, most = p
            v = arg.value
            n = int(v.text) if isinstance(v, A.Number) and v.text.isdigit() else None
            if n is None or not least <= n <= most:
                self.error("E052", f"`{arg.name}` of the fault `{f.name}` is a whole number from {least} to {most}",
                           arg.value.span, hint=f"e.g. `{arg.name}={default}` (the default)")


def _conjuncts(e: A.Expr) -> list[A.Expr]:
    if isinstance(e, A.Binary) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _calls(e, fn: str, defs: dict) -> bool:
    """Whether an expression calls the built-in `fn` (not a def of that name)."""
    if isinstance(e, A.Call) and e.fn == fn and fn not in defs:
        return True
    if isinstance(e, tuple):
        return any(_calls(x, fn, defs) for x in e)
    if attrs.has(type(e)) and not isinstance(e, Span):
        return any(_calls(getattr(e, f.name), fn, defs) for f in attrs.fields(type(e)) if f.name != "span")
    return False
