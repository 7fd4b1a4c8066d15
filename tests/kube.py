"""Build a cluster spec from text, reconcile it with the standard control plane, and read the result.

The Kubernetes behaviour tests (tests/test_k8s_*.py) write each cluster the way a user would,
as .konv text; `run` loads it with the rules in rules/ and returns a `Cluster` to query.
"""

from __future__ import annotations

import itertools
import tempfile
from fractions import Fraction
from pathlib import Path

from engine.api import decode_object
from engine import fixpoint
from engine.check import load_program
from engine.fixpoint import reconcile
from engine.store import open_store

_counter = itertools.count()
# One scratch directory per test process, removed when the process ends; specs get unique names in it.
_scratch = tempfile.TemporaryDirectory(prefix="konv-tests-")


class Cluster:
    """The fixed point of one reconcile: objects by kind, with small queries for the tests."""

    def __init__(self, result, store=None):
        self.result = result
        self.objects = list(result.objects)
        self.store = store

    def states(self):
        """Every state the store went through, oldest first: (revision, objects). Needs `run(…, history=True)`."""
        assert self.store is not None, "run(…, history=True) keeps the store"
        watcher = self.store.watch("/registry/", 1)
        current: dict[str, dict] = {}
        events = watcher.poll()
        i = 0
        while i < len(events):
            revision = events[i].kv.mod_revision
            while i < len(events) and events[i].kv.mod_revision == revision:
                e = events[i]
                if e.type == "PUT":
                    current[e.kv.key] = decode_object(e.kv)
                else:
                    current.pop(e.kv.key, None)
                i += 1
            yield revision, list(current.values())

    @property
    def clock(self):
        return self.result.clock

    def of(self, kind: str, namespace: str | None = None) -> list[dict]:
        return sorted((o for o in self.objects if o["kind"] == kind
                       and (namespace is None or o.get("namespace") == namespace)),
                      key=lambda o: (o.get("namespace") or "", o["name"]))

    def get(self, kind: str, name: str, namespace: str | None = "default") -> dict | None:
        for o in self.objects:
            if o["kind"] == kind and o["name"] == name and (o.get("namespace") == namespace or namespace is None):
                return o
        return None

    def pods(self, app: str | None = None, namespace: str | None = None, live: bool = False) -> list[dict]:
        out = [p for p in self.of("Pod", namespace) if app is None or p["labels"].get("app") == app]
        if live:
            out = [p for p in out if not p["deleting"] and p["phase"] not in ("Succeeded", "Failed")]
        return out

    def ready_pods(self, app: str | None = None, namespace: str | None = None) -> list[dict]:
        return [p for p in self.pods(app, namespace) if p["ready"] and not p["deleting"]]

    def node(self, name: str) -> dict:
        node = self.get("Node", name, None)
        assert node is not None, f"no node {name}"
        return node

    def writes(self, verb: str | None = None, kind: str | None = None, name: str | None = None,
               rule: str | None = None) -> list:
        return [w for w in self.result.trace
                if (verb is None or w.verb == verb) and (kind is None or w.kind == kind)
                and (name is None or w.name == name) and (rule is None or w.rule == rule)]


def memo_keeps(monkeypatch) -> list:
    """The names of the defs (and picks) whose results the engine's memo keeps from now on, in
    order, one per entry kept: what a test asserts was, or was not, worked out and kept."""
    kept, keep = [], fixpoint._Memo.keep

    def spy(self, key, value, reads):
        kept.append(key[0])
        return keep(self, key, value, reads)
    monkeypatch.setattr(fixpoint._Memo, "keep", spy)
    return kept


def write_spec(text: str, directory: Path | None = None) -> Path:
    directory = Path(directory or _scratch.name)
    path = directory / f"spec{next(_counter)}.konv"
    path.write_text(text)
    return path


def program_of(text: str, directory: Path | None = None):
    return load_program([write_spec(text, directory)])


def run(text: str, scenario: str | None = None, directory: Path | None = None, history: bool = False,
        until=None, **options) -> Cluster:
    """Reconcile the spec (with the standard rules) to its fixed point, through `scenario` if named
    (or the only one declared). Fails the test if it did not converge. `history` keeps the store,
    so that `Cluster.states()` can replay every revision. `until` (seconds of virtual time) stops a
    cluster that never rests, such as one with a container in CrashLoopBackOff, at that time."""
    program = program_of(text, directory)
    if scenario is None and len(program.scenarios) == 1:
        scenario = next(iter(program.scenarios))
    store = open_store(None) if history else None
    if until is not None:
        options["horizon"] = until
    result = reconcile(program, scenario=program.scenarios[scenario] if scenario else None, store=store,
                       **options)
    assert result.converged or (until is not None and result.reason == "horizon"), \
        f"did not converge: {result.reason} {result.cycle}"
    return Cluster(result, store)


def seconds(value) -> Fraction:
    return Fraction(value)


NODE = "node {name} {{ cpu: {cpu}  memory: {memory} {extra} }}\n"


def node(name: str, cpu="4", memory="8Gi", extra: str = "") -> str:
    return NODE.format(name=name, cpu=cpu, memory=memory, extra=extra)


# A "sick" node: its pods run but are not ready. A kubelet whose container runtime is down syncs no
# pod (rules/kubelet.konv), so the node starts healthy, and cordoned, so that the scheduler places
# nothing there while it is (pods pinned to it skip the scheduler). The containers of its pods
# crash (SICK_CONTAINER: each exits at 1 s, restarts at once, exits again at 2 s and waits out a
# 10 s back-off), and its runtime goes down at 5 s (`sick_event`) while they wait: they stay
# stopped, the pods Running and not ready (CrashLoopBackOff), the node Ready=False with the
# not-ready taint, as long as the runtime is down.
SICK_CONTAINER = "crashing: true"


def sick_node(name: str = "sick", cpu="4", memory="8Gi") -> str:
    return node(name, cpu, memory, extra="unschedulable: true")


def sick_event(name: str = "sick") -> str:
    return f"at 5s: runtime_down node {name}\n"


def deployment(name: str, replicas: int = 1, cpu="100m", memory="64Mi", labels: str | None = None,
               extra: str = "", container_extra: str = "", namespace: str | None = None) -> str:
    labels = labels if labels is not None else f'app: "{name}"'
    where = f" in {namespace}" if namespace else ""
    return (f"deployment {name}{where} {{\n  replicas: {replicas}\n  template {{\n    labels {{ {labels} }}\n"
            f"    {extra}\n    container main {{ image: \"{name}:1\"  cpu: {cpu}  memory: {memory} "
            f"{container_extra} }}\n  }}\n}}\n")
