"""Faults of the engine: failures in the control plane's machinery, not in the cluster.

The faults in rules/faults.konv change objects (a node fails, a pod crashes). These
change how a controller sees and writes the store, the failures that Kubernetes
controllers are written to survive. A scenario aims one at a controller
(check.ENGINE_FAULTS lists them and their parameters):

    at 30s: partial controller replicaset writes=1
        It crashes part-way through a rule: of its next rule firing with more than
        `writes` writes, the first `writes` land and the rest are lost; then it
        restarts — it lists afresh and looks at every instance of its rules again.
    at 1m: stale controller scheduler lag=3 steps=5
        For the next `steps` steps its informer falls behind: it sees the store
        `lag` changes late. It writes with the resourceVersions it saw, so an
        update of a changed object is a Conflict and a create of a name that
        exists is AlreadyExists — but a create under a name it computes from
        what it saw (a generated name) really creates a second object.
    at 1m: drop controller endpoints events=2
        Its watch loses the next `events` events. Its cache stays wrong for those
        objects until a later event for them arrives, or it relists: when the
        engine is otherwise idle (before it declares a fixed point or moves the
        clock), or RELIST_STEPS steps after the first loss.
    at 2m: reject controller kubelet requests=2
        The API server refuses its next `requests` requests with a transient
        error (500 InternalError). The controller stops that attempt, as a
        reconcile returns on its first error, and retries it after a back-off on
        the virtual clock (1 s, doubling, at most BACKOFF_MAX), unlike a permanent
        refusal, which the engine does not retry until the writes wanted change.

A controller under `stale` or `drop` evaluates its rule instances against a cache
of its own (a `_View`), fed by the watch events it is given; the others read the
engine's. Instances are still those of the objects in the engine's cache; one whose
object the controller does not see wants nothing, and one whose object is gone
only collects what it ensured, as always (a controller that missed a deletion
does not act on the ghost). While a view is open, every change to it wakes every
instance of its controller, so the incremental mode and the naive reference keep
taking the same path, and cycles are not looked for (a repeated store state is
not a repeated state while a controller's view differs). The disturbances end by
themselves: when the engine reaches a fixed point no controller's cache is behind
and no retry is pending (a fault armed but never triggered, such as a crash that
waits for a firing with more writes, stays armed and does nothing). An invariant
`at rest` is not checked while a retry is pending: there is work left to do.

Everything is deterministic: faults are counted in steps, events, writes and
requests of the run, never in wall-clock time, so that `konverge reconcile
--scenario FILE` replays a verify counterexample exactly.
"""

from __future__ import annotations

from collections import deque

from . import ast as A
from .check import ENGINE_FAULTS, Program
from .errors import Diagnostic, KonvergeError
from .eval import Evaluator

RELIST_STEPS = 20  # a view that lost events relists at the latest this many steps after the first loss
BACKOFF_BASE = 1  # seconds of virtual time before the first retry of a refused request
BACKOFF_MAX = 60
TRANSIENT = "InternalError (500): the server is currently unable to handle the request"


def fault_args(program: Program, event: A.FaultEvent) -> dict[str, int]:
    """The arguments of an engine fault event, defaults filled in."""
    from .fixpoint import constant

    spec = ENGINE_FAULTS[event.fault]
    args = {name: default for name, default, _, _ in spec.params}
    ranges = {name: (least, most) for name, _, least, most in spec.params}
    for arg in event.args:
        value = constant(program, arg.value)
        if arg.name not in ranges or not isinstance(value, int) or isinstance(value, bool) \
                or not ranges[arg.name][0] <= value <= ranges[arg.name][1]:
            raise KonvergeError(Diagnostic("E052", f"bad argument `{arg.name}` to the fault `{event.fault}`",
                                           span=arg.span))
        args[arg.name] = value
    return args


class _View:
    """One controller's own informer cache, behind the engine's."""

    def __init__(self, engine, controller: str):
        from .fixpoint import Cache, _TrackingWorld

        self.controller = controller
        self.cache = Cache()
        for obj in engine.cache.all():
            self.cache.put(obj)
        self.world = _TrackingWorld(self.cache)
        self.ev = Evaluator(engine.program, self.world)  # no memo: its entries are the engine's cache's
        self.held: deque = deque()  # events given late: (key, object or None)
        self.lag = 0  # events held back while the stale window is open
        self.until = 0  # the step at which the stale window closes
        self.lost_at: int | None = None  # the step of its first lost event, until it relists

    def deliver(self, keep: int) -> bool:
        """Give the controller its held events but the last `keep`; whether any was given."""
        given = False
        while len(self.held) > keep:
            key, obj = self.held.popleft()
            if obj is None:
                self.cache.remove(key)
            else:
                self.cache.put(obj)
            given = True
        return given

    def relist(self, cache) -> None:
        """List afresh: take the engine's cache as it is (the objects that differ)."""
        self.held.clear()
        self.lost_at = None
        from .fixpoint import object_key

        def keyed(objects):
            return {object_key(o["kind"], o.get("namespace"), o["name"]): o for o in objects}

        mine, theirs = keyed(self.cache.all()), keyed(cache.all())
        for key in mine.keys() - theirs.keys():
            self.cache.remove(key)
        for key, obj in theirs.items():
            if mine.get(key) is not obj:
                self.cache.put(obj)

    def stale(self, steps: int) -> bool:
        return self.lag > 0 and steps < self.until

    def differs(self, steps: int) -> bool:
        """Whether the controller may see something else than the engine's cache."""
        return bool(self.held) or self.lost_at is not None or self.stale(steps)


class EngineFaults:
    """The engine faults armed in one engine, and what they left behind."""

    def __init__(self, engine):
        self.engine = engine
        self.crash_after: dict[str, int] = {}  # controller → writes that land before it crashes
        self.refusing: dict[str, int] = {}  # controller → requests the API server still refuses
        self.dropping: dict[str, int] = {}  # controller → watch events it still loses
        self.views: dict[str, _View] = {}
        self.backoffs: dict[str, tuple] = {}  # instance id → (deadline, fingerprint of what it retries)
        self.failures: dict[str, int] = {}  # instance id → transient failures in a row
        self._crashed: str | None = None  # the instance whose firing a crash cut short
        self._failed: tuple[str, int] | None = None  # (instance id, index of the refused request)
        self._inside = False

    # -- arming, from a scenario event

    def arm(self, event: A.FaultEvent) -> None:
        args = fault_args(self.engine.program, event)
        controller = event.ref.name
        if controller not in self.engine.program.controllers:
            raise KonvergeError(Diagnostic("E053", f"no controller named `{controller}`", span=event.ref.span))
        if event.fault == "partial":
            self.crash_after[controller] = args["writes"]
        elif event.fault == "reject":
            self.refusing[controller] = args["requests"]
        elif event.fault == "drop":
            self.dropping[controller] = args["events"]
            self._view(controller)  # the same as the engine's cache until it loses an event
        else:
            view = self._view(controller)
            view.lag = args["lag"]
            view.until = self.engine.steps + args["steps"]

    def _view(self, controller: str) -> _View:
        view = self.views.get(controller)
        if view is None:
            view = self.views[controller] = _View(self.engine, controller)
        return view

    # -- reading: the hook in Engine.sync and Engine.evaluate

    def observe(self, changes: list[tuple]) -> None:
        """The watch events of one sync, as each faulty controller's informer gets them."""
        if not changes or not self.views:
            return
        steps = self.engine.steps
        for controller, view in sorted(self.views.items()):
            for key, _, after in changes:
                if self.dropping.get(controller):
                    self.dropping[controller] -= 1
                    if not self.dropping[controller]:
                        del self.dropping[controller]
                    if view.lost_at is None:
                        view.lost_at = steps
                else:
                    view.held.append((key, after))
            if view.deliver(view.lag if view.stale(steps) else 0):
                self.wake(controller)
        self._close_clean()

    def evaluate(self, inst):
        """The instance's outcome as its controller sees the store, if that is not the engine's
        cache; else None, and the engine evaluates it as usual."""
        view = self.views.get(inst.controller)
        if view is None or self._inside:
            return None
        from .fixpoint import _Outcome

        e = self.engine
        primary = None
        if inst.primary_key is not None:
            primary = view.cache.get(inst.primary_key)
            if primary is None:
                return _Outcome([], set(), set())  # it does not see the object yet
        saved = e.cache, e.world, e.ev
        view.cache.clock = e.cache.clock
        e.cache, e.world, e.ev = view.cache, view.world, view.ev
        self._inside = True
        try:
            return e.evaluate(inst, primary)
        finally:
            e.cache, e.world, e.ev = saved
            self._inside = False

    # -- writing: the hooks in Engine.apply and Engine.run

    def interrupts(self, inst, n: int, writes: list) -> bool:
        """Whether request `n` of an instance's writes is not made: a crash before it, or the API
        server refusing it (recorded in the trace); the rest of the writes are not made either."""
        controller = inst.controller
        crash = self.crash_after.get(controller)
        if crash is not None and len(writes) > crash and n == crash:
            del self.crash_after[controller]
            self._crashed = inst.id
            return True
        if self.refusing.get(controller):
            self.refusing[controller] -= 1
            if not self.refusing[controller]:
                del self.refusing[controller]
            self._failed = (inst.id, n)
            e = self.engine
            verb, kind, payload, _ = writes[n]
            name = payload["name"] if isinstance(payload, dict) else payload[2]
            ns = payload.get("namespace") if isinstance(payload, dict) else (payload[1] or None)
            delay = self._delay(inst.id)
            from .fixpoint import Write

            e.trace.append(Write(e.steps, e.api.revision, e.cache.clock, controller, inst.rule.name, inst.id,
                                 "refused", kind, ns, name, f"{TRANSIENT} ({verb}; retried after {delay}s)"))
            return True
        return False

    def _delay(self, iid: str):
        return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** self.failures.get(iid, 0))

    def interrupted(self, inst, writes: list) -> bool:
        """After an instance's firing: whether a fault cut it short, in which case it is retried
        (after a restart, or a back-off), not remembered as refused."""
        from .fixpoint import _fingerprint

        e = self.engine
        if self._crashed == inst.id:
            self._crashed = None
            e.refused.pop(inst.id, None)
            self.restart(inst.controller)
            return True
        if self._failed is not None and self._failed[0] == inst.id:
            _, n = self._failed
            self._failed = None
            deadline = e.cache.clock + self._delay(inst.id)
            self.failures[inst.id] = self.failures.get(inst.id, 0) + 1
            fingerprint = _fingerprint(writes[n:])
            e.refused[inst.id] = fingerprint  # skipped while it wants just that, until the deadline
            self.backoffs[inst.id] = (deadline, fingerprint)
            return True
        self.failures.pop(inst.id, None)
        return False

    def restart(self, controller: str) -> None:
        """A controller starts again, or relists: it lists afresh and looks at every instance of
        its rules again. (A stale window stays open: the watch it follows is still behind.)"""
        view = self.views.get(controller)
        if view is not None:
            view.relist(self.engine.cache)
        self.wake(controller)

    def wake(self, controller: str) -> None:
        e = self.engine
        for inst in list(e.instances.values()):
            if inst.controller == controller:
                e.mark(e.refresh(inst))

    # -- time: the hooks in Engine.run

    def tick(self) -> None:
        """Before each step: close the stale windows and relists that are due, end the back-offs
        whose deadline has come."""
        e = self.engine
        for controller, view in list(self.views.items()):
            if view.lag and not view.stale(e.steps):
                view.lag = 0
                if view.deliver(0):
                    self.wake(controller)
            if view.lost_at is not None and e.steps - view.lost_at >= RELIST_STEPS:
                self.restart(controller)
        self._close_clean()
        for iid, (deadline, fingerprint) in sorted(self.backoffs.items()):
            if deadline <= e.cache.clock:
                del self.backoffs[iid]
                if e.refused.get(iid) == fingerprint:
                    del e.refused[iid]
                inst = e.instances.get(iid)
                if inst is not None:
                    e.mark(e.refresh(inst))

    def _close_clean(self) -> None:
        """A view no longer needed (nothing held or lost, no window open, nothing to lose) goes:
        its controller reads the engine's cache again."""
        for controller, view in list(self.views.items()):
            if not view.differs(self.engine.steps) and controller not in self.dropping:
                del self.views[controller]
                self.wake(controller)

    def settle(self) -> bool:
        """The engine is idle: every informer behind catches up, or relists. Whether one did,
        which may give its controller something to do."""
        behind = [c for c, view in sorted(self.views.items()) if view.held or view.lost_at is not None]
        for controller in behind:
            self.restart(controller)
        self._close_clean()
        return bool(behind)

    def backs_off(self, iid: str, t) -> bool:
        """Whether instance `iid` waits out a back-off until `t`."""
        backoff = self.backoffs.get(iid)
        return backoff is not None and backoff[0] == t

    def deadlines(self) -> list[tuple]:
        """The back-offs pending, as timers (deadline, instance id)."""
        return sorted((d, iid) for iid, (d, _) in self.backoffs.items())

    def disturbing(self) -> bool:
        """Whether a controller's view of the store may differ from the engine's: no cycle is
        looked for meanwhile."""
        steps = self.engine.steps
        return any(view.differs(steps) for view in self.views.values())

    def pending(self) -> list[str]:
        """What is still armed or open, for the verifier's `eventually stable`."""
        out = [f"partial controller {c}" for c in sorted(self.crash_after)]
        out += [f"reject controller {c}" for c in sorted(self.refusing)]
        out += [f"drop controller {c}" for c in sorted(self.dropping)]
        out += [f"a view of controller {c} behind" for c, view in sorted(self.views.items())
                if view.held or view.lost_at is not None]
        out += [f"a back-off of {iid}" for iid in sorted(self.backoffs)]
        return out


def engine_faults(engine) -> EngineFaults:
    if engine.faults is None:
        engine.faults = EngineFaults(engine)
    return engine.faults

