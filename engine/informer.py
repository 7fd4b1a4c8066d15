"""An informer: a controller's cache of the kinds it watches, after client-go.

It lists each kind through the API server, then watches from the revision
after the list; `poll()` applies the events that arrived and returns them in
revision order. When the store has compacted the history a watch needs (the
API server says Expired, HTTP 410), the informer lists that kind again and
returns the difference between its cache and the new list as events, so a
controller misses no deletion. A poll that fails partway (the store's error, a
refused list) loses no event: the next one returns what it had applied. Caches
are per kind, keyed as the store keys them (`_key`), so that `scan` yields objects in key order.

It also serves as the evaluator's world: `scan(kind)` and `now()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .api import APIServer, APIWatcher, Expired, Identity, WatchEvent


class Informer:
    def __init__(self, api: APIServer, who: Identity, kinds: Iterable[str], *,
                 namespace: str | None = None, clock: Callable[[], Any] | None = None):
        self.api = api
        self.who = who
        self.namespace = namespace
        self._clock = clock or api.clock
        self.kinds = list(dict.fromkeys(api.kind_info(k).name for k in kinds))  # `item`, `items`: one kind
        self._caches: dict[str, dict[str, dict]] = {k: {} for k in self.kinds}
        self._watchers: dict[str, APIWatcher] = {}
        self.relists = 0  # how many times a compacted watch forced a new list
        self.revision = 0  # the newest revision applied to the caches
        self._polled = 0  # the store's revision at the latest poll
        self._undelivered: list[WatchEvent] = []  # applied by a poll that failed partway
        self._lost: set[str] = set()  # kinds whose watch the store ended, not yet listed again
        self._rank = {kind: i for i, kind in enumerate(self.kinds)}
        for kind in self.kinds:
            self._list(kind)

    def _list(self, kind: str) -> list[WatchEvent]:
        """(Re)list a kind, start watching after it, and return what changed."""
        old = self._caches[kind]
        # The list first: should it fail, the kind keeps its cache and its watch as they were.
        objects, revision = self.api.list(self.who, kind, self.namespace)
        # shared: a cache's objects are read, never changed in place (a controller writes a copy)
        watcher = self.api.watch(self.who, kind, revision + 1, self.namespace, shared=True)
        if kind in self._watchers:
            self._watchers[kind].cancel()
        new = {_key(o["namespace"], o["name"]): o for o in objects}
        self._caches[kind] = new
        self._watchers[kind] = watcher
        self.revision = max(self.revision, revision)
        events = []
        for key in sorted(old.keys() | new.keys()):
            before, after = old.get(key), new.get(key)
            if after is None:
                gone = dict(before)
                gone["resourceVersion"] = revision
                events.append(WatchEvent("DELETED", gone, before))
            elif before is None:
                events.append(WatchEvent("ADDED", after, None))
            elif before["resourceVersion"] != after["resourceVersion"]:
                events.append(WatchEvent("MODIFIED", after, before))
        return events

    def poll(self) -> list[WatchEvent]:
        """Apply the pending events to the caches and return them. Should a kind's watch or
        relist fail partway, the error goes to the caller and no event is lost: those applied
        before it are returned by the next poll, which asks every kind written since this one
        began."""
        out, self._undelivered = self._undelivered, []
        # A kind the API server has not written since the last poll has no events: most polls
        # follow a write or two of one kind. Its watch is told so when next asked: it has no
        # event through the poll before this one that it has not returned (`APIWatcher.skip`).
        written = self.api.written_since(self._polled)
        previous, self._polled = self._polled, self.api.revision
        if written is None:
            kinds = self.kinds
        else:
            rank = self._rank  # of every kind: the written ones, few, are looked up in it
            kinds = [kind for kind in written if kind in rank]
            if self._lost:
                kinds = list(self._lost.union(kinds))
            if len(kinds) > 1:
                kinds.sort(key=rank.__getitem__)
        merged, relists = bool(out) or len(kinds) > 1, self.relists
        try:
            for kind in kinds:
                out.extend(self._poll_kind(kind, previous))
        except BaseException:
            self._undelivered, self._polled = out, previous
            raise
        if merged or self.relists != relists:  # else the events of one watch, in revision order
            out.sort(key=lambda ev: ev.revision)  # stable: within a revision, kind then key order
        return out

    def _poll_kind(self, kind: str, previous: int) -> list[WatchEvent]:
        """Apply one kind's pending events to its cache and return them."""
        if kind not in self._lost:
            watcher = self._watchers[kind]
            watcher.skip(previous)
            try:
                events = watcher.poll()
            except Expired:
                self._lost.add(kind)  # the store ended the watch: listed again until that succeeds
        if kind in self._lost:
            events = self._list(kind)
            self._lost.discard(kind)
            self.relists += 1
            return events
        cache = self._caches[kind]
        for ev in events:
            obj = ev.object
            key = _key(obj["namespace"], obj["name"])
            if ev.type == "DELETED":
                cache.pop(key, None)
            else:
                cache[key] = obj
        if events:
            self.revision = max(self.revision, events[-1].revision)  # the watch's are in revision order
        return events

    # -- the cache

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        info = self.api.kind_info(kind)
        if not info.cluster and namespace is None:
            namespace = "default"
        return self._caches[info.name].get(_key(None if info.cluster else namespace, name))

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Cached objects of a kind (in a namespace), in key order."""
        objects = self.scan(kind)
        if namespace is None:
            return objects
        return [o for o in objects if o["namespace"] == namespace]

    def scan(self, kind: str) -> list[dict]:
        cache = self._caches[self.api.kind_info(kind).name]
        return [cache[k] for k in sorted(cache)]

    def now(self):
        return self._clock()

    def stop(self) -> None:
        for w in self._watchers.values():
            w.cancel()


def _key(namespace: str | None, name: str) -> str:
    """An object's key in its kind's cache: its store key less the kind's prefix, which all the
    kind's keys share, so that they sort as the store's do (`scan`), made without the kind's."""
    return name if namespace is None else f"{namespace}/{name}"
