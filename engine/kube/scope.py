"""Scope: a Kubernetes spec cut down to a few nodes and pods, for `verify --exhaustive`.

Bugs that show in a large cluster almost always show in a small one (the small scope
hypothesis), and an exhaustive search is only affordable there. `scoped(program, nodes=k,
pods=m)` keeps the first k nodes the spec declares and at most m pods: the pods it declares
and the replicas of its deployments and replica sets are counted in declaration order, each
workload getting what is left (so one may get 0), and an autoscaler may not scale past m.
Only the user's own declarations are cut; the standard control plane in rules/ is kept whole.

`smallest_failing_scope` grows the scope from one node and one pod (by total size, then
nodes), explores each exhaustively, and stops at the first that fails; a scope that cuts the
spec to what a smaller one did (two nodes of a spec that declares one) is not explored again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import attrs

from .. import ast as A
from ..check import Program, check_modules, std_dir
from ..explore import Exploration, default_domains, explore

WORKLOADS = ("Deployment", "ReplicaSet")


@attrs.frozen(slots=True)
class Scope:
    nodes: int | None  # None: as the spec declares
    pods: int | None

    def text(self) -> str:
        parts = [f"{self.nodes} node(s)" if self.nodes is not None else "every node",
                 f"{self.pods} pod(s)" if self.pods is not None else "every pod"]
        return ", ".join(parts)


@attrs.frozen(slots=True)
class ScopeRun:
    scope: Scope
    exploration: Exploration
    program: Program
    same_as: Scope | None = None  # a smaller scope that cut the spec to the same objects: not explored again


@attrs.frozen(slots=True)
class ScopeReport:
    runs: tuple[ScopeRun, ...]  # in the order they were explored; the last failed if any did
    elapsed: float

    @property
    def total(self) -> Exploration:
        """The scopes' explorations added up: what each property was checked on in all."""
        xs = [r.exploration for r in self.runs if r.same_as is None]
        checked: dict = {}
        for x in xs:
            for prop, n in x.checked.items():
                checked[prop] = checked.get(prop, 0) + n
        return Exploration(states=sum(x.states for x in xs), transitions=sum(x.transitions for x in xs),
                           fixed_points=sum(x.fixed_points for x in xs), exhausted=all(x.exhausted for x in xs),
                           elapsed=self.elapsed, checked=checked)

    @property
    def failed(self) -> ScopeRun | None:
        last = self.runs[-1] if self.runs else None
        return last if last is not None and last.exploration.violation is not None else None


def sizes(max_nodes: int | None, max_pods: int | None) -> list[Scope]:
    """Every scope up to the bounds, smallest first: by nodes + pods, then by nodes."""
    nodes = range(1, max_nodes + 1) if max_nodes is not None else [None]
    pods = range(1, max_pods + 1) if max_pods is not None else [None]
    return sorted((Scope(n, p) for n in nodes for p in pods), key=lambda s: ((s.nodes or 0) + (s.pods or 0),
                                                                             s.nodes or 0))


def _is_std(module: A.Module) -> bool:
    std = std_dir().resolve()
    return Path(module.path).resolve().is_relative_to(std)


def _int_field(decl: A.ObjectDecl, name: str) -> int | None:
    for e in decl.entries:
        if isinstance(e, A.FieldEntry) and e.key == name and isinstance(e.value, A.Number):
            try:
                return int(e.value.text)
            except ValueError:
                return None
    return None


def _with_field(decl: A.ObjectDecl, name: str, value: int) -> A.ObjectDecl:
    entry = A.FieldEntry(name, A.Number(str(value)))
    entries = [entry if isinstance(e, A.FieldEntry) and e.key == name else e for e in decl.entries]
    if not any(isinstance(e, A.FieldEntry) and e.key == name for e in decl.entries):
        entries.insert(0, entry)
    return attrs.evolve(decl, entries=tuple(entries))


def cut(program: Program, scope: Scope) -> list[A.Module]:
    """The program's modules with the user's objects cut down to the scope."""
    nodes_left = scope.nodes
    pods_left = scope.pods
    out = []
    for module in program.modules:
        if _is_std(module):
            out.append(module)
            continue
        decls = []
        for d in module.decls:
            kind = program.kind(d.kind).name if isinstance(d, A.ObjectDecl) and program.kind(d.kind) else None
            if kind == "Node" and nodes_left is not None:
                if nodes_left == 0:
                    continue
                nodes_left -= 1
            elif kind == "Pod" and pods_left is not None:
                if pods_left == 0:
                    continue
                pods_left -= 1
            elif kind in WORKLOADS and pods_left is not None:
                wanted = _int_field(d, "replicas")
                given = min(1 if wanted is None else wanted, pods_left)
                pods_left -= given
                if given != wanted:
                    d = _with_field(d, "replicas", given)
            elif kind == "HorizontalPodAutoscaler" and scope.pods is not None:
                for field in ("minReplicas", "maxReplicas"):
                    value = _int_field(d, field)
                    if value is not None and value > scope.pods:
                        d = _with_field(d, field, scope.pods)
            decls.append(d)
        out.append(attrs.evolve(module, decls=tuple(decls)))
    return out


def scoped(program: Program, scope: Scope) -> Program:
    return check_modules(cut(program, scope))


def scoped_module(program: Program, out: Path) -> A.Module:
    """The user's declarations of a (scoped) program as one module written at `out`: the files
    it imports are merged in; imports of the standard control plane are kept, relative to `out`."""
    user = [m for m in program.modules if not _is_std(m)]
    merged = {Path(m.path).resolve() for m in user}
    decls: list = []
    imports: list[str] = []
    for module in user:
        for d in module.decls:
            if not isinstance(d, A.Import):
                decls.append(d)
                continue
            if d.path == "std":
                target = "std"
            else:
                path = (Path(module.path).parent / d.path).resolve()
                if path in merged or (path.is_dir() and all(p.resolve() in merged for p in path.glob("*.konv"))):
                    continue
                target = Path(_relative(path, out.parent.resolve())).as_posix()
            if target not in imports:
                imports.append(target)
    return A.Module(str(out), (*(A.Import(i) for i in imports), *decls))


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start)


def domains(scope: Scope) -> Callable:
    """Fault arguments within the scope: a `replicas` argument from 0 to the pods allowed."""

    def values(program: Program, fault: A.FaultDecl, param: A.Param) -> list:
        if param.name == "replicas" and scope.pods is not None:
            return [A.Number(str(n)) for n in range(scope.pods + 1)]
        return default_domains(program, param)

    return values


def smallest_failing_scope(program: Program, max_nodes: int | None, max_pods: int | None, *,
                           progress: Callable[[Scope, int, int, int], None] | None = None,
                           **options) -> ScopeReport:
    """Explore every scope up to the bounds, smallest first; stop at the first that fails.
    A scope that cuts the spec to the same objects as a smaller one (a spec with one node,
    at two nodes) is not explored again. `options` go to `explore` (faults, deletions,
    max_faults, max_states)."""
    started = time.monotonic()
    runs: list[ScopeRun] = []
    seen: dict[tuple, ScopeRun] = {}
    for scope in sizes(max_nodes, max_pods):
        modules = cut(program, scope)
        objects = tuple(d for m in modules if not _is_std(m) for d in m.decls if isinstance(d, A.ObjectDecl))
        earlier = seen.get((objects, scope.pods))
        if earlier is not None:
            runs.append(ScopeRun(scope, earlier.exploration, earlier.program, same_as=earlier.scope))
            continue
        small = check_modules(modules)
        tick = (lambda s, t, f, scope=scope: progress(scope, s, t, f)) if progress else None
        run = ScopeRun(scope, explore(small, domains=domains(scope), progress=tick, **options), small)
        runs.append(run)
        seen[(objects, scope.pods)] = run
        if run.exploration.violation is not None:
            break
    return ScopeReport(tuple(runs), time.monotonic() - started)


def scopes_table(report: ScopeReport, max_states: int) -> str:
    """A row per scope explored: its size, the states, and what came of it."""
    from ..explore import table_text

    rows = []
    for run in report.runs:
        x = run.exploration
        size = [str(run.scope.nodes or "all"), str(run.scope.pods or "all")]
        if run.same_as is not None:
            rows.append([*size, "", "", "", f"as {run.same_as.nodes or 'all'}×{run.same_as.pods or 'all'}", "",
                         "holds"])
            continue
        faults = "no fault yet" if x.fault_budget == 0 else f"≤{x.fault_budget} fault(s)"
        space = "exhausted" if x.exhausted else ("stopped" if x.violation is not None else
                                                 f"cut at {max_states:,}, {faults}")
        rows.append([*size, f"{x.states:,}", f"{x.transitions:,}", f"{x.fixed_points:,}", space, f"{x.elapsed:.1f}s",
                     "fails" if x.violation is not None else "holds"])
    columns = [("NODES", "right"), ("PODS", "right"), ("STATES", "right"), ("TRANSITIONS", "right"),
               ("FIXED POINTS", "right"), ("SPACE", "left"), ("TIME", "right"), ("RESULT", "left")]
    return table_text(columns, rows)
