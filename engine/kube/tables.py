"""kubectl-like `get` tables and `describe`, over a set of objects.

The objects come from a reconcile run in memory or from a store's data
directory; either way this module sees a list of object dicts (and, for
`describe`, the engine's write trace when there is one). Tables have kubectl's
columns for the kinds people look at most — pods, nodes, services,
deployments, replica sets, endpoints, HPAs, namespaces, service accounts,
events, routes — and the generic columns of engine.show for the rest; every
table but the events' (which have kubectl's LAST SEEN first) ends its usual
columns with AGE. Names are kubectl's too: `deployment.apps/web` in `-o name`,
`deployments.apps "web" not found` for one that is not there.
"""

from __future__ import annotations

import re
from fractions import Fraction
from collections.abc import Callable, Iterable

from ..api import META, resource_name
from ..check import KindInfo, Program
from ..errors import Diagnostic, KonvergeError
from ..names import closest, elsewhere
from ..show import cell, columns as generic_columns, display
from ..types import ListT, MapT, OptT, RecordT, Type
from ..values import format_duration, format_quantity
from .labels import GRAMMAR, Requirement, SelectorError, go_quote, matches, parse_selector
from .manifests import API_VERSIONS

SHORT_NAMES = {
    "po": "Pod", "no": "Node", "svc": "Service", "deploy": "Deployment", "rs": "ReplicaSet",
    "ep": "Endpoints", "ns": "Namespace", "sa": "ServiceAccount", "hpa": "HorizontalPodAutoscaler",
    "ev": "Event", "ds": "DaemonSet", "sts": "StatefulSet", "pdb": "PodDisruptionBudget",
}
ROLE_PREFIX = "node-role.kubernetes.io/"
RBAC = "rbac.authorization.k8s.io/v1"
# The group/version kubectl asks a Kubernetes API server for each kind in (its preferred one):
# the kinds manifests declare, and those the control plane writes. Konverge's own (Route,
# IPBlock, …) have none.
VERSIONS = {**{kind: versions[0] for kind, versions in API_VERSIONS.items() if kind != "List"},
            "Endpoints": "v1", "Event": "v1",
            "Role": RBAC, "RoleBinding": RBAC, "ClusterRole": RBAC, "ClusterRoleBinding": RBAC}
# The API group of each kind served outside Kubernetes' core group, as kubectl names a resource
# (`deployment.apps/web`, `deployments.apps "web" not found`); the core group's kinds and
# Konverge's own have none (`pod/web-1`, `route/…`).
GROUPS = {kind: version.split("/")[0] for kind, version in VERSIONS.items() if "/" in version}


def type_name(kind: str) -> str:
    """How kubectl names a kind in `-o name` and before a name: `deployment.apps`, `pod`."""
    group = GROUPS.get(kind)
    return kind.lower() + (f".{group}" if group else "")


def not_found(kind: str, name: str, hint: str | None = None, code: str = "E202") -> KonvergeError:
    """kubectl's error for a named object that is not there: `Error from server (NotFound):
    deployments.apps "web" not found` (exit 1)."""
    group = GROUPS.get(kind)
    resource = resource_name(kind) + (f".{group}" if group else "")
    return KonvergeError(Diagnostic(code, f'Error from server (NotFound): {resource} "{name}" not found',
                                    hint=hint), exit_code=1)


def label_selector(program: Program, kinds: str, text: str) -> tuple[Requirement, ...]:
    """`get KINDS -l TEXT` (TEXT as kubectl sends it, `kubectl_selector`): the requirements, or the
    API server's refusal of its first request, for the first of KINDS, as kubectl prints it (exit
    1): `Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label
    selector "a in x", field selector "": unable to parse requirement: found 'x' expected: '('`. A
    kind Kubernetes does not serve is named by its resource alone, as kubectl named every one
    before it printed the group and version."""
    first = next((k for k in kinds.split(",") if k), None)
    if not text or first is None:
        return ()
    try:
        return parse_selector(text)
    except SelectorError as e:
        kind = resolve_kind(program, first).name
        version = VERSIONS.get(kind)
        resource = (f"{GROUPS.get(kind, '')}/{version.split('/')[-1]}, Resource={resource_name(kind)}"
                    if version else resource_name(kind))
        raise KonvergeError(Diagnostic(
            "E204", f"Error from server (BadRequest): Unable to find {go_quote(resource)} that match label "
                    f"selector {go_quote(text)}, field selector \"\": {e}",
            hint=f"a label selector is {GRAMMAR}"), exit_code=1) from None


def refuse_name_with_selector(name: str | None, selector) -> None:
    """kubectl's refusal of a NAME with a label selector (its text or its requirements; an empty
    one is none, as kubectl trims `-l ''` away): a usage error."""
    if name is not None and selector:
        raise KonvergeError(Diagnostic("E203", "name cannot be provided when a selector is specified",
                                       hint="drop the NAME or the -l SELECTOR"), exit_code=2)


def resolve_kind(program: Program, word: str) -> KindInfo:
    """The kind a user means by `pod`, `Pod`, `pods`, `po` or `endpoint`, or with its group as
    kubectl takes it (`deployments.apps`, `jobs.batch`, `sts.apps`); an error with a guess if none."""
    low, dot, group = word.lower().partition(".")
    names = {k.lower(): k for k in program.kinds}
    for candidate in (low, SHORT_NAMES.get(low, "").lower(), low + "s", low[:-1] if low.endswith("s") else "",
                      low[:-2] if low.endswith("es") else "", low[:-3] + "y" if low.endswith("ies") else ""):
        if candidate and candidate in names and (not dot or GROUPS.get(names[candidate]) == group):
            return program.kinds[names[candidate]]
    low = word.lower()
    guess = closest(low, sorted(names))
    raise KonvergeError(Diagnostic("E202", f'the server doesn\'t have a resource type "{word}"',
                                   hint=f"did you mean `{guess}`?" if guess else
                                   "known kinds: " + ", ".join(sorted(names))))


def split_ref(ref: str) -> tuple[str, str | None]:
    """`pod/web-1` → ("pod", "web-1"); `pods` → ("pods", None)."""
    kind, _, name = ref.partition("/")
    return kind, name or None


def select(program: Program, objects: Iterable[dict], kind: str, name: str | None = None, *,
           namespace: str | None = None, all_namespaces: bool = False,
           selector: tuple[Requirement, ...] = ()) -> tuple[KindInfo, list[dict], str | None]:
    """The objects `get KIND [NAME] [-l SELECTOR]` shows, sorted by namespace and name (the
    order the API server lists them in, which kubectl keeps), and the namespace looked in
    (None: all, or a cluster-scoped kind). A NAME that is not there is kubectl's NotFound."""
    refuse_name_with_selector(name, selector)
    info = resolve_kind(program, kind)
    if name is not None and all_namespaces and not info.cluster:  # as kubectl refuses it
        raise KonvergeError(Diagnostic("E203", "a resource cannot be retrieved by name across all namespaces",
                                       hint=elsewhere(objects, info.name, name, None)
                                       or "drop -A, or name the namespace with -n NAMESPACE"), exit_code=2)
    ns = None if info.cluster or all_namespaces else (namespace or "default")
    chosen = [o for o in objects if o["kind"] == info.name and (ns is None or o.get("namespace") == ns)
              and (name is None or o["name"] == name) and matches(selector, o.get("labels"))]
    chosen.sort(key=lambda o: (o.get("namespace") or "", o["name"]))
    if name is not None and not chosen:
        guess = closest(name, [o["name"] for o in objects if o["kind"] == info.name
                               and (ns is None or o.get("namespace") == ns)])
        raise not_found(info.name, name, elsewhere(objects, info.name, name, ns)
                        or (f"did you mean `{guess}`?" if guess else None)
                        or (f"looked in namespace {ns}: -n NAMESPACE for another" if ns else None))
    return info, chosen, ns


# ---- get ---------------------------------------------------------------------------------


def get_many(program: Program, selections: list[tuple[KindInfo, list[dict]]], world: list[dict], *,
             single: bool, ns: str | None, output: str | None = None, clock=None, trace=None,
             label_columns: tuple[str, ...] = (), show_labels: bool = False) -> str:
    """The text `konverge get KIND,KIND…` prints: a table per kind, names prefixed by their kind
    as kubectl does when it shows several, or -o wide|name; JSON and YAML one List of them all,
    each object as the JSON contract shows it (cpu in millicores, memory in bytes), so that
    `get` and `reconcile -o json` agree. `clock` (virtual seconds) and the write `trace` give
    the objects their AGE. A table ends with a column for each of `label_columns` (-L), then
    LABELS (--show-labels), as kubectl's table printer adds them."""
    from .contract import contract_object, dumps, dumps_yaml

    several = len(selections) > 1
    if output in ("json", "yaml"):
        shown = [contract_object(program, o) for _, chosen in selections for o in chosen]
        data = shown[0] if single and not several and shown else {"kind": "List", "items": shown}
        return dumps(data) if output == "json" else dumps_yaml(data)
    if output == "name":
        return "".join(f"{type_name(info.name)}/{o['name']}\n" for info, chosen in selections for o in chosen)
    created = {w.revision: w.clock for w in trace or () if w.verb == "create"}

    def age_of(o: dict) -> str:
        """kubectl's AGE on the virtual clock: a pod keeps its creation time (`createdAt`), any
        other object's is the clock of the write that created it, if the trace is there."""
        if o["kind"] == "Event":  # kubectl's LAST SEEN: since the event was last seen
            return age(o.get("at", 0), clock)
        return age(o["createdAt"] if "createdAt" in o else created.get(o.get("createdRevision")), clock)

    tables = []
    for info, chosen in selections:
        if not chosen:
            continue
        with_namespace = ns is None and not info.cluster
        prefix = f"{type_name(info.name)}/" if several else ""
        columns = TABLES.get(info.name)
        if columns is not None:
            headers, row = columns(world, output == "wide", age_of)
        else:
            headers, row = generic_columns(program, info, output == "wide", age_of)
        named = info.name not in NAMELESS
        rows = [([o["namespace"]] if with_namespace else []) + ([prefix + o["name"]] if named else []) + row(o)
                + label_cells(o.get("labels") or {}, label_columns, show_labels) for o in chosen]
        tables.append(render_table((["NAMESPACE"] if with_namespace else []) + (["NAME"] if named else [])
                                   + headers + label_headers(label_columns, show_labels), rows))
    if not tables:
        cluster = all(info.cluster for info, _ in selections)
        where = "" if cluster or ns is None else f" in {ns} namespace"
        return f"No resources found{where}.\n"
    return "\n".join(tables)


def label_headers(keys: tuple[str, ...], show_labels: bool) -> list[str]:
    """kubectl's headers for -L (formatLabelHeaders: the key's last `/` part, in capitals) and
    --show-labels."""
    return [key.split("/")[-1].upper() for key in keys] + (["LABELS"] if show_labels else [])


def label_cells(labels: dict, keys: tuple[str, ...], show_labels: bool) -> list[str]:
    """kubectl's labelValues: each key's value, empty where the object has none, then all the
    labels as labels.FormatLabels writes them (sorted `k=v`, comma-joined; `<none>`)."""
    shown = ",".join(f"{k}={labels[k]}" for k in sorted(labels)) or "<none>"
    return [labels.get(key, "") for key in keys] + ([shown] if show_labels else [])


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in [headers, *rows])


def _none(v) -> str:
    return "<none>" if v is None or v == "" or v == [] or v == {} else str(v)


def _requirement(r: dict) -> str:
    """One matchExpressions entry as labels.Requirement.String() prints it, values sorted."""
    key, op, values = r.get("key", ""), r.get("operator", ""), ",".join(sorted(r.get("values") or []))
    if op == "In":
        return f"{key} in ({values})"
    if op == "NotIn":
        return f"{key} notin ({values})"
    if op == "Exists":
        return key
    if op == "DoesNotExist":
        return "!" + key
    if op == "Gt":
        return f"{key}>{values}"
    if op == "Lt":
        return f"{key}<{values}"
    return f"{key} {op} ({values})"  # an operator admission refuses, as it was written


def selector_text(match: dict | None, expressions: list | None) -> str:
    """A LabelSelector (matchLabels and matchExpressions) as kubectl prints it: its requirements
    sorted by key (`app=web,!legacy,tier in (a,b)`), `<none>` for none."""
    requirements = [(k, f"{k}={v}") for k, v in (match or {}).items()]
    requirements += [(r.get("key", ""), _requirement(r)) for r in expressions or []]
    requirements.sort(key=lambda kr: kr[0])
    return ",".join(text for _, text in requirements) or "<none>"


def workload_selector(obj: dict) -> str:
    """A ReplicaSet's, Deployment's, DaemonSet's, StatefulSet's or budget's selector, kubectl-style; one
    of the last three that is left out altogether is its template's labels (`selector_of` in
    rules/admission.konv)."""
    match, expressions = obj.get("selector") or {}, obj.get("matchExpressions") or []
    if obj.get("kind") == "PodDisruptionBudget" and obj.get("selector") is None and not expressions:
        return "<unset>"  # a nil selector, which selects no pod; `{}` is `<none>` and selects every one
    if obj.get("kind") in ("Deployment", "DaemonSet", "StatefulSet") and not match and not expressions:
        match = obj.get("template", {}).get("labels", {})
    return selector_text(match, expressions)


def pod_status(p: dict) -> str:
    """kubectl's STATUS column: the phase, or the reason that says more — the pod's own reason
    once it has finished (OutOfcpu, NodeAffinity, …), else a container's, as kubectl reads
    them from the last container to the first: a container that exited and waits out its
    restart back-off is CrashLoopBackOff, one that exited for good Error or Completed."""
    if p.get("deleting"):
        return "Terminating"
    status = p.get("phase") or "Unknown"
    if status == "Pending" and p.get("node") is not None and p.get("initContainers"):
        return init_status(p)
    if status in ("Failed", "Succeeded") and p.get("reason"):
        return p["reason"]
    if status == "Succeeded":
        status = "Completed"
    running = False
    for c in reversed(p.get("containers", [])):
        if c.get("state") == "Terminated":
            exit_code = c.get("exitCode") or 0
            policy = p.get("restartPolicy", "Always")
            restarts = policy == "Always" or (policy == "OnFailure" and exit_code != 0)
            if restarts and c.get("backoffUntil") is not None:
                status = "CrashLoopBackOff"
            else:
                status = "Error" if exit_code != 0 else "Completed"
        elif c.get("state") == "Running":
            running = True
    if status == "Completed" and running:
        status = "Running"
    return status


def init_status(p: dict) -> str:
    """kubectl's STATUS for a pod its kubelet holds that has not finished initialising: `Init:i/N`,
    i the init containers done (completed, or sidecars started), as printPod counts them. Konverge
    runs them all as the pod starts, so a bound pod still Pending (waiting for an address) is
    `Init:0/N`, as upstream's is while its first init container waits (PodInitializing)."""
    inits = p["initContainers"]
    done = 0
    for c in inits:
        if not (c.get("state") == "Terminated" and not c.get("exitCode")
                or c.get("restartPolicy") == "Always" and c.get("state") == "Running"):
            break
        done += 1
    return f"Init:{done}/{len(inits)}" if done < len(inits) else "Pending"


def pod_ready(p: dict) -> tuple[int, int]:
    """kubectl's READY (printPod, 1.29+): the ready containers among the app containers and the
    sidecars (restartPolicy Always init containers). A container is ready while it runs and, with a
    readiness probe, while the probe's result is Success (kubelet.konv's container_ready), whether
    or not the pod is: the node lifecycle controller's MarkPodsNotReady changes only the pod's
    Ready condition, so a pod on a lost node still shows 1/1."""
    sidecars = [c for c in p.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    containers = p.get("containers", []) + sidecars
    return sum(c.get("state") == "Running" and (not c.get("readinessProbe") or bool(c["readinessProbe"].get("passed")))
               for c in containers), len(containers)


def node_status(n: dict) -> str:
    status = "Ready" if n.get("ready") else "NotReady"
    return status + (",SchedulingDisabled" if n.get("unschedulable") else "")


def node_roles(n: dict) -> str:
    """kubectl's findNodeRoles: the suffix of each node-role.kubernetes.io/ label (not an empty
    one) and the value of kubernetes.io/role (not an empty one), sorted, once each."""
    roles = set()
    for k, v in (n.get("labels") or {}).items():
        if k.startswith(ROLE_PREFIX) and len(k) > len(ROLE_PREFIX):
            roles.add(k[len(ROLE_PREFIX):])
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def age(created, clock) -> str:
    """kubectl's AGE: the time since the object was created, on the virtual clock."""
    if clock is None or created is None:
        return "<unknown>"
    return human_duration(clock - created)


def human_duration(seconds) -> str:
    """A duration as kubectl prints an age (apimachinery's HumanDuration): `45s`, `3m20s`,
    `2h15m`, `36h`, `3d4h`, `20d`, `2y10d`."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _pod_columns(world, wide, age_of):
    headers = ["READY", "STATUS", "RESTARTS", "AGE"] + (["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
                                                        if wide else [])

    def row(p):
        containers = p.get("containers", [])
        ready, total = pod_ready(p)
        cells = [f"{ready}/{total}", pod_status(p), str(sum(c.get("restarts", 0) for c in containers)),
                 age_of(p)]
        return cells + ([_none(p.get("ip")), _none(p.get("node")), "<none>", "<none>"] if wide else [])
    return headers, row


def _node_columns(world, wide, age_of):
    headers = ["STATUS", "ROLES", "AGE"] + (["INTERNAL-IP", "CPU", "MEMORY", "PODS", "POD-CIDRS", "TAINTS"]
                                            if wide else [])

    def row(n):
        cells = [node_status(n), node_roles(n), age_of(n)]
        if wide:
            taints = [taint_text(t) for t in n.get("taints", [])]
            cells += [_none(n.get("internalIP")), format_quantity(n.get("cpu", 0)),
                      format_quantity(n.get("memory", 0)), str(n.get("pods", "")),
                      ",".join(n.get("podCIDRs", [])) or "<none>", ",".join(taints) or "<none>"]
        return cells
    return headers, row


def _service_columns(world, wide, age_of):
    headers = ["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"] + (["SELECTOR"] if wide else [])

    def row(s):
        ports = ",".join(f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                         for p in s.get("ports", []))
        # No cloud provider gives a LoadBalancer an address: kubectl shows it <pending>.
        external = "<pending>" if s.get("type") == "LoadBalancer" else "<none>"
        cells = [s.get("type", "ClusterIP"), _none(s.get("clusterIP")), external, ports or "<none>", age_of(s)]
        return cells + ([selector_text(s.get("selector"), None)] if wide else [])
    return headers, row


def _owned(world: list[dict], kind: str, namespace, owner_kind: str, owner: str) -> list[dict]:
    return [o for o in world if o["kind"] == kind and o.get("namespace") == namespace
            and (o.get("owner") or {}).get("kind") == owner_kind and (o.get("owner") or {}).get("name") == owner]


def _live(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p.get("deleting") and p.get("phase") not in ("Succeeded", "Failed")]


def _images(template: dict) -> tuple[str, str]:
    containers = template.get("containers", [])
    return ",".join(c["name"] for c in containers) or "<none>", ",".join(c["image"] for c in containers) or "<none>"


def _deployment_columns(world, wide, age_of):
    """kubectl's printDeployment: READY is status.readyReplicas of spec.replicas, UP-TO-DATE
    status.updatedReplicas, AVAILABLE status.availableReplicas (the Deployment controller's)."""
    headers = ["READY", "UP-TO-DATE", "AVAILABLE", "AGE"] + (["CONTAINERS", "IMAGES", "SELECTOR"] if wide else [])

    def row(d):
        cells = [f"{d.get('readyReplicas', 0)}/{d.get('replicas', 0)}", str(d.get("updatedReplicas", 0)),
                 str(d.get("availableReplicas", 0)), age_of(d)]
        if wide:
            cells += [*_images(d.get("template", {})), workload_selector(d)]
        return cells
    return headers, row


def _replicaset_columns(world, wide, age_of):
    headers = ["DESIRED", "CURRENT", "READY", "AGE"] + (["CONTAINERS", "IMAGES", "SELECTOR"] if wide else [])

    def row(rs):
        pods = _live(_owned(world, "Pod", rs["namespace"], "ReplicaSet", rs["name"]))
        cells = [str(rs.get("replicas", 0)), str(len(pods)), str(sum(1 for p in pods if p.get("ready"))),
                 age_of(rs)]
        if wide:
            cells += [*_images(rs.get("template", {})), workload_selector(rs)]
        return cells
    return headers, row


def _daemonset_columns(world, wide, age_of):
    """kubectl's printDaemonSet (pkg/printers/internalversion/printers.go): the status counts the
    DaemonSet controller writes, the template's nodeSelector as labels.FormatLabels prints it."""
    headers = ["DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"] + (
        ["CONTAINERS", "IMAGES", "SELECTOR"] if wide else [])

    def row(ds):
        template = ds.get("template", {})
        node_selector = ",".join(f"{k}={v}" for k, v in sorted((template.get("nodeSelector") or {}).items()))
        cells = [str(ds.get(f, 0)) for f in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                              "updatedNumberScheduled", "numberAvailable")]
        cells += [node_selector or "<none>", age_of(ds)]
        if wide:
            cells += [*_images(template), workload_selector(ds)]
        return cells
    return headers, row


def _statefulset_columns(world, wide, age_of):
    """kubectl's printStatefulSet: READY is the status' ready count over the spec's replicas."""
    headers = ["READY", "AGE"] + (["CONTAINERS", "IMAGES"] if wide else [])

    def row(sts):
        cells = [f"{sts.get('readyReplicas', 0)}/{sts.get('replicas', 0)}", age_of(sts)]
        if wide:
            cells += [*_images(sts.get("template", {}))]
        return cells
    return headers, row


def job_status(job: dict) -> str:
    """printJob's STATUS: its terminal condition, else Suspended (its Suspended condition), else
    Running."""
    types = {c.get("type") for c in job.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in types:
        return "Complete"
    if "Failed" in types:
        return "Failed"
    return "Suspended" if "Suspended" in types else "Running"


def _job_columns(world, wide, age_of):
    """kubectl's printJob (pkg/printers/internalversion/printers.go): COMPLETIONS as succeeded of
    completions (`0/1 of 3` for a work queue with parallelism 3), DURATION from startTime to
    completionTime, or to now while it runs, on the virtual clock."""
    headers = ["STATUS", "COMPLETIONS", "DURATION", "AGE"] + (["CONTAINERS", "IMAGES", "SELECTOR"] if wide else [])

    def row(j):
        succeeded, completions = j.get("succeeded", 0), j.get("completions")
        if completions is not None:
            done = f"{succeeded}/{completions}"
        elif j.get("parallelism", 1) > 1:
            done = f"{succeeded}/1 of {j['parallelism']}"
        else:
            done = f"{succeeded}/1"
        start, end = j.get("startTime"), j.get("completionTime")
        took = "" if start is None else age_of({"kind": "Job", "createdAt": start}) if end is None \
            else human_duration(end - start)
        cells = [job_status(j), done, took, age_of(j)]
        if wide:
            cells += [*_images(j.get("template", {})), workload_selector(j)]
        return cells
    return headers, row


def _endpoints_columns(world, wide, age_of):
    def row(e):
        # kubectl's formatEndpoints: ip:port, or the IP alone where a subset has no ports (a
        # headless service without ports)
        addresses = [str(a["ip"]) if a.get("port") is None else f"{a['ip']}:{a['port']}"
                     for a in e.get("addresses", [])]
        if not addresses:
            return ["<none>", age_of(e)]
        if len(addresses) > 3 and not wide:
            return [",".join(addresses[:3]) + f" + {len(addresses) - 3} more...", age_of(e)]
        return [",".join(addresses), age_of(e)]
    return ["ENDPOINTS", "AGE"], row


def hpa_reference(h: dict) -> tuple[str, str]:
    """An HPA's scaleTargetRef (kind, name): its `target` is a Deployment's name or KIND/NAME
    (rules/controllers.konv, hpa_target_kind)."""
    kind, slash, name = (h.get("target") or "").partition("/")
    return (kind, name) if slash else ("Deployment", kind)


def _hpa_columns(world, wide, age_of):
    # printHorizontalPodAutoscaler: REFERENCE is `Kind/name`; REPLICAS the target's replica count
    # (status.currentReplicas, which the HPA reads from the target's scale).
    def row(h):
        current = h.get("currentCPUUtilization")
        kind, name = hpa_reference(h)
        target = next((o for o in world if o["kind"] == kind and o.get("namespace") == h.get("namespace")
                       and o["name"] == name), None)
        return [f"{kind}/{name}",
                f"cpu: {'<unknown>' if current is None else str(current) + '%'}/{h.get('targetCPUUtilization')}%",
                str(h.get("minReplicas")), str(h.get("maxReplicas")),
                str(target.get("replicas")) if target else "<unknown>", age_of(h)]
    return ["REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"], row


def _pdb_columns(world, wide, age_of):
    """kubectl's printPodDisruptionBudget: each bound as given, N/A for the one left out."""
    def bound(v):
        return "N/A" if v is None else str(v)
    return (["MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"],
            lambda b: [bound(b.get("minAvailable")), bound(b.get("maxUnavailable")),
                       str(b.get("disruptionsAllowed", 0)), age_of(b)])


def _namespace_columns(world, wide, age_of):
    return ["STATUS", "AGE"], lambda n: [n.get("phase", "Active"), age_of(n)]


def event_object(ref: str) -> str:
    """An Event's `object` (Kind/namespace/name) as kubectl's OBJECT column prints the involved
    object: `pod/web-1`, `node/worker-1`."""
    parts = (ref or "").split("/")
    return f"{parts[0].lower()}/{parts[-1]}" if len(parts) > 1 else (ref or "").lower()


def _event_columns(world, wide, age_of):
    # kubectl's columns (printEvent): LAST SEEN, the time since the event was last seen (here its
    # `at`, on the virtual clock), then with -o wide SUBOBJECT, SOURCE, FIRST SEEN, COUNT and the
    # event's NAME, which an events table has only there. Konverge records an event once.
    def row(e):
        seen = age_of(e)
        cells = [seen, e.get("type", ""), e.get("reason", ""), event_object(e.get("object", ""))]
        if wide:
            source = (e.get("managedBy") or "").split("/")[0]
            return cells + ["", source, e.get("message", "").strip(), seen, "1", e["name"]]
        return cells + [e.get("message", "").strip()]
    headers = ["LAST SEEN", "TYPE", "REASON", "OBJECT"]
    if wide:
        return headers + ["SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"], row
    return headers + ["MESSAGE"], row


def _route_columns(world, wide, age_of):
    def row(r):
        return [r.get("service", ""), f"{r.get('clusterIP')}:{r.get('port')}/{r.get('protocol')}",
                r.get("action", ""), str(len(r.get("backends", []))), age_of(r)]
    return ["SERVICE", "DESTINATION", "ACTION", "BACKENDS", "AGE"], row


def _service_account_columns(world, wide, age_of):
    # Kubernetes 1.24+ no longer makes a token Secret per service account: SECRETS is 0.
    return ["SECRETS", "AGE"], lambda sa: ["0", age_of(sa)]


# Kinds whose table has no NAME column first (an event's name is a generated key: kubectl shows
# it last, with -o wide).
NAMELESS = frozenset({"Event"})

TABLES: dict[str, Callable] = {
    "Pod": _pod_columns, "Node": _node_columns, "Service": _service_columns, "Deployment": _deployment_columns,
    "ReplicaSet": _replicaset_columns, "DaemonSet": _daemonset_columns,
    "StatefulSet": _statefulset_columns, "Job": _job_columns, "Endpoints": _endpoints_columns,
    "HorizontalPodAutoscaler": _hpa_columns, "PodDisruptionBudget": _pdb_columns, "Namespace": _namespace_columns, "Event": _event_columns,
    "Route": _route_columns, "ServiceAccount": _service_account_columns,
}


# ---- describe ----------------------------------------------------------------------------


def object_ref(obj: dict) -> str:
    """How an Event's `object` names an object: Kind/namespace/name (Kind/name when cluster-scoped)."""
    ns = obj.get("namespace")
    return f"{obj['kind']}/{ns}/{obj['name']}" if ns else f"{obj['kind']}/{obj['name']}"


def events_for(obj: dict, world: Iterable[dict]) -> list[dict]:
    names = {object_ref(obj), f"{obj['kind']}/{obj.get('namespace') or ''}/{obj['name']}"}
    found = [e for e in world if e["kind"] == "Event" and e.get("object") in names]
    return sorted(found, key=lambda e: (e.get("at", 0), e["name"]))


def history_for(obj: dict, trace) -> list:
    return [w for w in trace if w.kind == obj["kind"] and (w.namespace or None) == (obj.get("namespace") or None)
            and w.name == obj["name"]]


def describe(program: Program, info: KindInfo, obj: dict, world: Iterable[dict], trace=None) -> str:
    """kubectl describe: the object's fields, its Events and the engine's writes to it."""
    shown = display(program, info, obj)
    world = list(world)
    after = DESCRIBE_SHAPES[info.name](obj, shown, world) if info.name in DESCRIBE_SHAPES else {}
    lines: list[str] = []
    head = [("Name", obj["name"])]
    if obj.get("namespace") is not None:
        head.append(("Namespace", obj["namespace"]))
    head.append(("Kind", obj["kind"]))
    width = 2 + max([len(_title(f)) for f in ["Namespace", "Revisions", *(k for k in shown if k not in META)]]
                    + [len(label) for lines in after.values() for label, _ in lines
                       if label is not None and not label.endswith(":")])
    for key, value in head:
        lines.append(f"{key + ':':<{width}} {value}".rstrip())
    # A flattened LabelSelector (matchLabels `selector`, `matchExpressions` beside it) is one
    # line, as kubectl describe prints a selector.
    folded = "selector" in info.fields and "matchExpressions" in info.fields
    for f in info.fields.values():
        if folded and f.name == "selector":
            lines.append(f"{'Selector:':<{width}} {workload_selector(obj)}")
        elif f.name in shown and not (folded and f.name == "matchExpressions"):
            title = KIND_TITLES.get((obj["kind"], f.name)) or _title(f.name)
            lines.extend(_field(program, title, f.type, shown[f.name], 0, width))
            # A label with its colon is one kubectl writes without a tab: not aligned; none, a
            # line of a table, as it is.
            lines.extend(text if label is None else f"{label} {text}" if label.endswith(":")
                         else f"{label + ':':<{width}} {text}" for label, text in after.get(f.name, []))
    revisions = [f"created at revision {obj['createdRevision']}" if obj.get("createdRevision") else None,
                 f"last written at revision {obj['resourceVersion']}" if obj.get("resourceVersion") else None]
    if obj.get("managedBy"):
        revisions.append(f"ensured by {obj['managedBy']}")
    if any(revisions):
        lines.append(f"{'Revisions:':<{width}} {', '.join(r for r in revisions if r)}")
    events = events_for(obj, world)
    if not events:
        lines.append(f"{'Events:':<{width}} <none>")
    else:
        lines.append("Events:")
        rows = [[e.get("type", ""), e.get("reason", ""), format_duration(e.get("at", 0)),
                 (e.get("managedBy") or "").split("/")[0] or "<unknown>", e.get("message", "")] for e in events]
        lines.extend("  " + line for line in render_table(["Type", "Reason", "At", "From", "Message"],
                                                          [["----", "------", "--", "----", "-------"], *rows])
                     .splitlines())
    if trace is None:
        lines.append(f"{'History:':<{width}} <not recorded>")
    else:
        writes = history_for(obj, trace)
        if not writes:
            lines.append(f"{'History:':<{width}} <none>")
        else:
            lines.append("History:")
            rows = [[str(w.revision), format_duration(w.clock),
                     w.actor + (f"/{w.rule}" if w.rule else ""), w.verb, w.message or ""] for w in writes]
            lines.extend("  " + line for line in render_table(
                ["Revision", "Clock", "Actor/Rule", "Verb", "Message"],
                [["--------", "-----", "----------", "----", "-------"], *rows]).splitlines())
    return "\n".join(line.rstrip() for line in lines) + "\n"


def toleration_text(t: dict) -> str:
    """A toleration as kubectl describe prints it (printTolerationsMultilineWithIndent):
    `key=value:Effect`, ` op=Exists` for an Exists without a value, ` for 300s`."""
    text = t.get("key", "") + (f"={t['value']}" if t.get("value") else "")
    text += f":{t['effect']}" if t.get("effect") else ""
    if t.get("operator") == "Exists" and not t.get("value"):
        text += " op=Exists" if text else "op=Exists"
    if t.get("tolerationSeconds") is not None:
        text += f" for {t['tolerationSeconds']}s"
    return text


def taint_text(t: dict) -> str:
    """A taint as kubectl prints it (Taint.ToString): `key=value:Effect`, `key:Effect`."""
    return t.get("key", "") + (f"={t['value']}" if t.get("value") else "") + f":{t.get('effect', '')}"


def probe_text(pr: dict) -> str:
    """A probe as kubectl describe prints it (DescribeProbe): its handler, then `delay=0s timeout=1s
    period=10s #success=1 #failure=3`, an unset (0) timeout, period or threshold read as its default
    (SetDefaults_Probe). Its declared outcome is not kubectl's: shown as the probe's results are,
    in the container's READY and the pod's events."""
    def value(field, default):
        return pr.get(field) or default
    attrs = (f"delay={pr.get('initialDelaySeconds') or 0}s timeout={value('timeoutSeconds', 1)}s "
             f"period={value('periodSeconds', 10)}s #success={value('successThreshold', 1)} "
             f"#failure={value('failureThreshold', 3)}")
    if pr.get("exec") is not None:
        return f"exec [{' '.join(pr['exec'])}] {attrs}"
    if pr.get("httpGet") is not None:
        h = pr["httpGet"]
        port = str(h["port"]) if h.get("port") is not None else h.get("portName") or ""
        host = h.get("host") or ""
        host = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if port else host  # net.JoinHostPort
        path = h.get("path", "/")
        path = path if path.startswith("/") or not host else "/" + path  # url.URL.String, beside a host
        return f"http-get {(h.get('scheme') or 'HTTP').lower()}://{host}{path} {attrs}"
    if pr.get("tcpSocket") is not None:
        t = pr["tcpSocket"]
        port = str(t["port"]) if t.get("port") is not None else t.get("portName") or ""
        return f"tcp-socket {t.get('host') or ''}:{port} {attrs}"
    if pr.get("grpc") is not None:
        g = pr["grpc"]
        return f"grpc <pod>:{g.get('port')} {g.get('service') or ''} {attrs}"
    return f"unknown {attrs}"


# Lists of these records are printed one item a line, in kubectl describe's order; a record
# field of these, in one line.
ONE_LINE: dict[str, Callable[[dict], str]] = {"Toleration": toleration_text, "Taint": taint_text,
                                              "Probe": probe_text}
SORTED_BY: dict[str, Callable[[dict], tuple]] = {
    "Toleration": lambda t: (t.get("key", ""),),
    "Taint": lambda t: (t.get("effect", ""), t.get("key", "")),
}

TITLES = {"ip": "IP", "cpu": "CPU", "clusterIP": "Cluster IP", "strategy": "StrategyType", "target": "Reference",
          "readinessProbe": "Readiness", "livenessProbe": "Liveness"}
# A kind's own labels where kubectl's differ from its field's (describePodDisruptionBudget).
KIND_TITLES = {("PodDisruptionBudget", "minAvailable"): "Min available",
               ("PodDisruptionBudget", "maxUnavailable"): "Max unavailable",
               ("HorizontalPodAutoscaler", "minReplicas"): "Min replicas",
               ("HorizontalPodAutoscaler", "maxReplicas"): "Max replicas"}


def _title(field: str) -> str:
    if field in TITLES:
        return TITLES[field]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", field)
    return words[:1].upper() + words[1:]


def _service_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """kubectl's describeService (pkg/describe/describe.go): a node port is a line of its own after
    the ports, `NodePort:  http  30080/TCP`, not a field of each port; externalTrafficPolicy and
    allocateLoadBalancerNodePorts only where the type reads them."""
    if shown.get("externalTrafficPolicy") is None:
        shown.pop("externalTrafficPolicy", None)
    if obj.get("type") != "LoadBalancer":
        shown.pop("allocateLoadBalancerNodePorts", None)
    if shown.get("ports"):
        shown["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in shown["ports"]]
    return {"ports": [("NodePort", f"{p.get('name') or '<unset>'}  {p['nodePort']}/{p.get('protocol') or 'TCP'}")
                      for p in obj.get("ports") or [] if p.get("nodePort")]}


def _pod_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """kubectl's describePod and DescribePodTemplate: an Init Containers section only when there
    are some, and Conditions only when the pod has some (here only DisruptionTarget is kept)."""
    if not shown.get("conditions", True):
        del shown["conditions"]
    for pod in (shown, shown.get("template")):
        if isinstance(pod, dict) and not pod.get("initContainers", True):
            del pod["initContainers"]
        # A container that runs until stopped, as a server does, says nothing of runFor; one
        # that does not crash, or exits 1 when it does, nothing of crashCode.
        for c in pod.get("containers") or [] if isinstance(pod, dict) else []:
            for field in ("runFor", "crashCode", "readinessProbe", "livenessProbe"):
                if isinstance(c, dict) and c.get(field) is None:
                    c.pop(field, None)
    return {}


def _replicaset_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """kubectl's describeReplicaSet prints neither minReadySeconds nor the available count (the
    Deployment's describe and `-o json` show them)."""
    shown.pop("minReadySeconds", None)
    shown.pop("availableReplicas", None)
    return _pod_shape(obj, shown, world)


# The Deployment controller's status fields, which describeDeployment prints on its Replicas line.
_DEPLOYMENT_STATUS = ("createdReplicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                      "unavailableReplicas")


def _deployment_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str | None, str]]]:
    """kubectl's describeDeployment: `Replicas:  3 desired | 3 updated | 3 total | 3 available | 0
    unavailable` (the spec's count and the status'), `StrategyType: Recreate`, `MinReadySeconds`,
    for RollingUpdate one line `RollingUpdateStrategy:  25% max unavailable, 25% max surge` in
    place of the two fields; after the template the Conditions table (Type, Status, Reason, where
    there are conditions), OldReplicaSets (the old sets with replicas) and NewReplicaSet, each
    `web-5d4f (3/3 replicas created)` (printReplicaSetsByLabels: the set's pods of its replicas).
    progressDeadlineSeconds is not printed, as kubectl does not."""
    _pod_shape(obj, shown, world)
    for field in (*_DEPLOYMENT_STATUS, "conditions", "progressDeadlineSeconds"):
        shown.pop(field, None)
    shown["replicas"] = (f"{obj.get('replicas', 1)} desired | {obj.get('updatedReplicas', 0)} updated | "
                         f"{obj.get('createdReplicas', 0)} total | {obj.get('availableReplicas', 0)} available | "
                         f"{obj.get('unavailableReplicas', 0)} unavailable")
    shown.setdefault("strategy", "RollingUpdate")  # stored before the field was: the only strategy then
    strategy = [("MinReadySeconds", str(shown.pop("minReadySeconds", 0)))]
    surge, unavailable = shown.pop("maxSurge", None), shown.pop("maxUnavailable", None)
    if surge is not None or unavailable is not None:
        strategy.append(("RollingUpdateStrategy", f"{cell(unavailable)} max unavailable, {cell(surge)} max surge"))
    status: list[tuple[str | None, str]] = []
    conditions = obj.get("conditions") or []
    if conditions:
        rows = [[c.get("type", ""), c.get("status", ""), c.get("reason", "")] for c in conditions]
        table = render_table(["Type", "Status", "Reason"], [["----", "------", "------"], *rows]).splitlines()
        status += [("Conditions:", "")] + [(None, "  " + line) for line in table]
    sets = _owned(world, "ReplicaSet", obj.get("namespace"), "Deployment", obj["name"])
    new = [rs for rs in sets if rs.get("revision") == obj.get("revision")]
    old = [rs for rs in sets if rs not in new and rs.get("replicas", 0) > 0]

    def created(rs: dict) -> str:
        pods = _live(_owned(world, "Pod", rs.get("namespace"), "ReplicaSet", rs["name"]))
        return f"{rs['name']} ({len(pods)}/{rs.get('replicas', 0)} replicas created)"
    status += [("OldReplicaSets", ", ".join(created(rs) for rs in old) or "<none>"),
               ("NewReplicaSet", ", ".join(created(rs) for rs in new) or "<none>")]
    return {"strategy": strategy, "revision": status}


# describeDaemonSet's lines for the status counts, in its order and words (it prints no ready count),
# each written without a tab, so not aligned with the others.
_DAEMONSET_STATUS = (
    ("desiredNumberScheduled", "Desired Number of Nodes Scheduled"),
    ("currentNumberScheduled", "Current Number of Nodes Scheduled"),
    ("updatedNumberScheduled", "Number of Nodes Scheduled with Up-to-date Pods"),
    ("numberAvailable", "Number of Nodes Scheduled with Available Pods"),
    ("numberMisscheduled", "Number of Nodes Misscheduled"),
)


def _daemonset_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """kubectl's describeDaemonSet (pkg/describe/describe.go): the status counts on its lines,
    after the update strategy, then Pods Status (getPodStatusForController: the set's pods by
    phase), and the template as DescribePodTemplate prints it."""
    _pod_shape(obj, shown, world)
    for field in ("numberReady", *(f for f, _ in _DAEMONSET_STATUS)):
        shown.pop(field, None)
    return {"maxUnavailable": [(title + ":", str(obj.get(field, 0))) for field, title in _DAEMONSET_STATUS]
            + [("Pods Status", _pods_status(obj, world))]}


def _pods_status(obj: dict, world: list[dict]) -> str:
    """getPodStatusForController: the controller's pods by phase, `3 Running / 0 Waiting / …`."""
    phases = [p.get("phase") for p in world if p.get("kind") == "Pod" and p.get("namespace") == obj.get("namespace")
              and p.get("owner") == {"kind": obj["kind"], "name": obj["name"]}]
    return " / ".join(f"{phases.count(phase)} {word}" for phase, word in (
        ("Running", "Running"), ("Pending", "Waiting"), ("Succeeded", "Succeeded"), ("Failed", "Failed")))


# The StatefulSet controller's status fields, which describeStatefulSet does not print one by one.
_STATEFULSET_STATUS = ("createdReplicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                       "currentRevision", "updateRevision")


def _statefulset_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """kubectl's describeStatefulSet (pkg/describe/describe.go): `Replicas:  3 desired | 3 total`
    (the spec's count and the status'), the update strategy with its partition indented under a
    RollingUpdate, then Pods Status, and the template as DescribePodTemplate prints it."""
    _pod_shape(obj, shown, world)
    for field in _STATEFULSET_STATUS:
        shown.pop(field, None)
    partition = shown.pop("partition", 0)
    if not shown.get("startOrdinal"):
        shown.pop("startOrdinal", None)  # describeStatefulSet prints no ordinals; a start of 0 is none
    shown["replicas"] = f"{obj.get('replicas', 1)} desired | {obj.get('createdReplicas', 0)} total"
    after = [("  Partition", str(partition))] if obj.get("updateStrategy", "RollingUpdate") == "RollingUpdate" else []
    return {"updateStrategy": after + [("Pods Status", _pods_status(obj, world))]}


def _job_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """kubectl's describeJob (pkg/describe/describe.go): `Completed At` and `Duration` once it
    completed, and one `Pods Statuses:  1 Active (1 Ready) / 2 Succeeded / 0 Failed` line in
    place of the counts; the back-off record, which upstream keeps in the controller's memory, is
    not shown, nor the disrupted pods it judged (disruptedPods); a work queue's
    completions are `<unset>`, as describeJob prints them; the podFailurePolicy, which
    describeJob does not print, only where there is one."""
    _pod_shape(obj, shown, world)
    if "completions" in shown and obj.get("completions") is None:
        shown["completions"] = "<unset>"
    if shown.get("podFailurePolicy") is None:
        shown.pop("podFailurePolicy", None)
    for field in ("active", "ready", "succeeded", "failed", "completionTime", "failuresAfterLastSuccess",
                  "lastFailureTime", "disruptedPods"):
        shown.pop(field, None)
    lines = []
    start, end = obj.get("startTime"), obj.get("completionTime")
    if end is not None:
        lines.append(("Completed At", format_duration(end)))
    if start is not None and end is not None:
        lines.append(("Duration", human_duration(end - start)))
    lines.append(("Pods Statuses", f"{obj.get('active', 0)} Active ({obj.get('ready', 0)} Ready) / "
                                   f"{obj.get('succeeded', 0)} Succeeded / {obj.get('failed', 0)} Failed"))
    return {"startTime": lines}


def _selects(holder: dict, labels: dict) -> bool:
    """A flattened LabelSelector (kinds.konv: matchLabels `selector`, `matchExpressions` beside
    it) against labels, as `selects` in rules/kinds.konv: none given selects nothing."""
    match, expressions = holder.get("selector"), holder.get("matchExpressions") or []
    if match is None and not expressions:
        return False
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    return all(labels.get(k) == v for k, v in (match or {}).items()) and all(
        Requirement(e["key"], operators.get(e["operator"], e["operator"]), tuple(e.get("values") or ())).matches(labels)
        for e in expressions)


def _node_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """A node a `drain` runs against (its Drain, rules/disruption.konv): what it has left to evict
    and, for each pod a PodDisruptionBudget holds back, the budget and its counts, as the eviction
    API's 429 words them (`needs 2 healthy pods and has 2 currently`), or kubectl's error for an
    eviction it gave up on."""
    drain = next((d for d in world if d.get("kind") == "Drain" and d["name"] == obj["name"]), None)
    if drain is None:
        return {}
    listed, evicted = drain.get("pods") or [], drain.get("evicted") or []
    failed = drain.get("failed") or {}
    left = [p for p in world if p.get("kind") == "Pod" and p.get("node") == obj["name"]
            and f"{p.get('namespace')}/{p['name']}" in listed
            and (p.get("deleting") or f"{p.get('namespace')}/{p['name']}" not in evicted)]
    retry = drain.get("retryAt")
    lines = [("Drain", f"{len(left)} pod(s) left to evict" + (
        f", refused evictions retried every 5s from {format_duration(retry)}" if retry is not None else ""))]
    for p in left:
        budgets = [b for b in world if b.get("kind") == "PodDisruptionBudget"
                   and b.get("namespace") == p.get("namespace") and _selects(b, p.get("labels") or {})]
        if f"{p.get('namespace')}/{p['name']}" in failed:
            why = failed[f"{p.get('namespace')}/{p['name']}"]  # kubectl gave up on it
        elif p.get("deleting"):
            why = "Terminating"
        elif len(budgets) > 1:
            why = "more than one PodDisruptionBudget: " + ", ".join(b["name"] for b in budgets)
        elif budgets and budgets[0].get("disruptionsAllowed", 0) == 0:
            b = budgets[0]
            why = (f"PodDisruptionBudget {b['name']} allows no disruption: it needs {b.get('desiredHealthy', 0)} "
                   f"healthy pods and has {b.get('currentHealthy', 0)} currently")
        else:
            why = "to be evicted"
        lines.append((f"  {p.get('namespace')}/{p['name']}", why))
    return {"unschedulable": lines}


def _pdb_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """kubectl's describePodDisruptionBudget: the bound given (`Min available` or `Max
    unavailable`), then Status with Allowed disruptions, Current, Desired and Total."""
    for field in ("minAvailable", "maxUnavailable"):
        if shown.get(field) is None:
            shown.pop(field, None)
    counts = [(field, shown.pop(field, 0)) for field in ("disruptionsAllowed", "currentHealthy", "desiredHealthy",
                                                         "expectedPods")]
    titles = {"disruptionsAllowed": "Allowed disruptions", "currentHealthy": "Current", "desiredHealthy": "Desired",
              "expectedPods": "Total"}
    return {"unhealthyPodEvictionPolicy": [("Status:", "")]
            + [(f"    {titles[field]}", str(value)) for field, value in counts]}


def _hpa_shape(obj: dict, shown: dict, world: list[dict]) -> dict[str, list[tuple[str | None, str]]]:
    """kubectl's describeHorizontalPodAutoscalerV2: `Reference:  Deployment/web` (the target's kind
    spelt out where a spec names a Deployment by its name alone), Metrics `( current / target )`
    with the cpu line (`54% (270m) / 60%`: the utilisation and the average use of a ready pod,
    `<unknown>` without a metric), Min and Max replicas, `Deployment pods:  2 current / 2
    desired` (status.currentReplicas and desiredReplicas) and the Conditions table. The
    recommendations, which upstream keeps in the controller's memory, and the last scale time and
    rescale message, which its events show, are not printed; the load a scenario feeds is, after
    the metric."""
    kind, name = hpa_reference(obj)
    shown["target"] = f"{kind}/{name}"
    for field in ("targetCPUUtilization", "currentCPUUtilization", "recommendations", "lastScale", "load",
                  "currentReplicas", "desiredReplicas", "conditions", "lastRescale"):
        shown.pop(field, None)
    current = obj.get("currentCPUUtilization")
    ready = [p for p in world if p.get("kind") == "Pod" and p.get("namespace") == obj.get("namespace")
             and p.get("ready") and not p.get("deleting")
             and _selects(_scale_selector(obj, world), p.get("labels") or {})]
    if current is None:
        now = "<unknown>"
    elif obj.get("load") is not None and ready:
        # NewMilliQuantity(metricsTotal / len(metrics)): the average use, in whole millicores
        now = f"{current}% ({format_quantity(Fraction(int(Fraction(obj['load']) * 1000) // len(ready), 1000))})"
    else:
        now = f"{current}%"
    metrics = [("Metrics", "( current / target )"),
               ("  resource cpu on pods  (as a percentage of request)",
                f"{now} / {obj.get('targetCPUUtilization')}%")]
    if obj.get("load") is not None:
        metrics.append(("Load", format_quantity(obj["load"])))
    pods = [(f"{kind} pods", f"{obj.get('currentReplicas', 0)} current / {obj.get('desiredReplicas', 0)} desired")]
    conditions = obj.get("conditions") or []
    if conditions:
        rows = [[c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")]
                for c in conditions]
        table = render_table(["Type", "Status", "Reason", "Message"],
                             [["----", "------", "------", "-------"], *rows]).splitlines()
        pods += [("Conditions:", "")] + [(None, "  " + line) for line in table]
    return {"target": metrics, "maxReplicas": pods}


def _scale_selector(hpa: dict, world: list[dict]) -> dict:
    """The selector of the HPA's target (its scale's status.selector), as a flattened LabelSelector
    holder; none selects no pod."""
    kind, name = hpa_reference(hpa)
    target = next((o for o in world if o["kind"] == kind and o.get("namespace") == hpa.get("namespace")
                   and o["name"] == name), None)
    return target if target is not None else {}


# A kind's describe shape: trims `shown` in place and gives lines (label, text) to print after a
# field, aligned with the others unless the label ends with its colon; it may look at the other
# objects (`world`).
DESCRIBE_SHAPES: dict[str, Callable[[dict, dict, list[dict]], dict[str, list[tuple[str | None, str]]]]] = {
    "Service": _service_shape, "Pod": _pod_shape, "ReplicaSet": _replicaset_shape, "Deployment": _deployment_shape,
    "DaemonSet": _daemonset_shape, "StatefulSet": _statefulset_shape, "Job": _job_shape, "Node": _node_shape,
    "PodDisruptionBudget": _pdb_shape, "HorizontalPodAutoscaler": _hpa_shape}


def _field(program: Program, title: str, t: Type, value, indent: int, width: int) -> list[str]:
    """One field as kubectl describe prints it: by its declared type."""
    t = t.inner if isinstance(t, OptT) else t
    label = f"{' ' * indent}{title}:"
    if isinstance(value, dict | list) and not value:
        return [f"{label:<{width}} <none>"]
    if isinstance(t, MapT) and isinstance(value, dict):
        items = [f"{k}={cell(v)}" for k, v in sorted(value.items())]
        return [f"{label:<{width}} {items[0]}"] + [f"{'':<{width}} {i}" for i in items[1:]]
    if isinstance(t, RecordT) and isinstance(value, dict) and t.name in ONE_LINE:
        return [f"{label:<{width}} {ONE_LINE[t.name](value)}"]
    if isinstance(t, RecordT) and isinstance(value, dict) and t.name in program.records:
        return [label, *_record(program, program.records[t.name].fields, value, indent + 2)]
    if isinstance(t, ListT) and isinstance(value, list):
        elem = t.elem.inner if isinstance(t.elem, OptT) else t.elem
        one_line = ONE_LINE.get(elem.name) if isinstance(elem, RecordT) else None
        if one_line is not None:  # as kubectl describe prints them: one a line, sorted
            items = [one_line(v) for v in sorted(value, key=SORTED_BY[elem.name])]
            return [f"{label:<{width}} {items[0]}"] + [f"{'':<{width}} {i}" for i in items[1:]]
        if not (isinstance(elem, RecordT) and elem.name in program.records):
            return [f"{label:<{width}} {', '.join(cell(v) for v in value)}"]
        fields = program.records[elem.name].fields
        out = [label]
        for item in value:
            named = "name" in fields and item.get("name")
            out.append(f"{' ' * (indent + 2)}{item['name']}:" if named else f"{' ' * (indent + 2)}-")
            out.extend(_record(program, {k: f for k, f in fields.items() if not named or k != "name"}, item,
                               indent + 4))
        return out
    return [f"{label:<{width}} {cell(value)}"]


def _record(program: Program, fields: dict, value: dict, indent: int) -> list[str]:
    present = [f for f in fields.values() if f.name in value]
    if not present:
        return []
    width = indent + max(len(_title(f.name)) for f in present) + 1
    out = []
    for f in present:
        out.extend(_field(program, _title(f.name), f.type, value[f.name], indent, width))
    return out


__all__ = ["GROUPS", "VERSIONS", "age", "describe", "event_object", "events_for", "get_many", "history_for",
           "human_duration", "label_selector", "node_roles", "not_found", "pod_status", "refuse_name_with_selector",
           "render_table", "resolve_kind", "select", "selector_text", "split_ref", "type_name", "workload_selector"]
