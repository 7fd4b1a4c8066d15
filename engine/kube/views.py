"""kubectl-like views over a reconciled cluster: explain, why-pending, trace, route.

The Kubernetes edge of `engine.explain`: these know pods, the scheduler's
`bind` rule, the kube-proxy's Route table and the components of the pod
creation sequence; the generic machinery (the trace, re-evaluating a rule's
clauses, a pick's candidates) lives in the core. Each view takes what
`reconcile` takes — `.konv` specs and YAML manifests, or directories of them,
reconciled in memory, optionally through a scenario named or given as a file —
or a persisted store's data directory (read-only), and returns the text it
prints.
"""

from __future__ import annotations

import ipaddress
import sys
from fractions import Fraction

from ..check import Program
from ..errors import Diagnostic, KonvergeError, located
from ..explain import (State, explain, instance_why, load_state, render_explanation, render_instance,
                       state_of, why_not)
from ..fixpoint import Write, key_text, object_key
from ..names import closest, elsewhere
from ..values import format_duration
from .tables import not_found, pod_status, resolve_kind

# The scheduler's rules that bind a pod: `bind` over every node, `bind_named` over the nodes a
# pod's node affinity names (NodeAffinity's PreFilter); why-pending shows the one that applies.
SCHEDULER_RULES = ("scheduler/bind", "scheduler/bind_named")

# The component of the pod creation sequence each controller plays, as the
# Kubernetes documentation names them.
COMPONENTS = {
    "spec": "kubectl → API server → store",
    "scenario": "scenario (a user or a fault)",
    "deployment": "controller-manager: deployment",
    "replicaset": "controller-manager: replicaset",
    "daemonset": "controller-manager: daemonset",
    "statefulset": "controller-manager: statefulset",
    "scheduler": "scheduler",
    "calico_ipam": "CNI (Calico IPAM)",
    "endpoints": "controller-manager: endpoints",
    "kube_proxy": "kube-proxy",
    "node_lifecycle": "controller-manager: node lifecycle",
    "garbage_collector": "controller-manager: garbage collector",
    "pod_gc": "controller-manager: pod GC",
    "disruption": "controller-manager: disruption",
    "drain": "kubectl drain → API server (eviction)",
}

# What each kubelet rule stands for: the kubelet drives the runtime and reports status.
KUBELET_STEPS = {
    "start_containers": "kubelet → runtime, CNI (sandbox, IP, start), status",
    "ready": "kubelet: status (Ready)",
    "not_ready": "kubelet: status (not Ready)",
    "reject": "kubelet: admission (OutOf…, NodeAffinity)",
    "crash": "runtime: container exited",
    "restart": "kubelet → runtime (restart)",
    "finish": "kubelet: status (finished)",
    "remove_terminating": "kubelet → runtime (stop)",
}


def component(w: Write) -> str:
    if w.actor == "kubelet":
        return KUBELET_STEPS.get(w.rule or "", "kubelet")
    return COMPONENTS.get(w.actor, w.actor)


# ---- where the state comes from ----------------------------------------------------------------


def load(files: list[str], *, example: str, scenario: str | None = None, data_dir: str | None = None,
         std: bool = True) -> tuple[Program, State]:
    """The program and the state a view looks at: the specs reconciled in memory, or a data
    directory read as it is (the specs, if any, then only declare the rules). Specs are what
    `reconcile` takes — `.konv` files and Kubernetes YAML manifests mixed, or directories — and
    `scenario` names a scenario of the specs or a file holding one; loading is the CLI's own
    (`engine.cli._load_run`), so that a view sees the cluster `reconcile` would build. `example`:
    the command line the error for neither shows."""
    from ..cli import _load_run
    from ..show import standard_program

    if data_dir is not None:
        if scenario:
            raise KonvergeError(Diagnostic("E220", "--scenario needs spec files, not --data-dir",
                                           hint="a data directory is shown as it is"), exit_code=2)
        program = _load_run(files, None, no_std=not std)[0] if files else standard_program()
        return program, load_state(data_dir)
    if not files:
        raise KonvergeError(Diagnostic("E220", "give spec files or --data-dir DIR",
                                       hint=f"e.g. {example}"), exit_code=2)
    from ..fixpoint import reconcile

    program, chosen, manifests = _load_run(files, scenario, no_std=not std)
    return program, state_of(reconcile(program, scenario=chosen, objects=manifests.declared))


def _missing(what: str, name: str, known: list[str], hint_none: str, hint_elsewhere: str | None = None, *,
             prefixes: bool = False, kind: str | None = None) -> KonvergeError:
    """The error for a name not found among `known`: for an object of `kind`, kubectl's NotFound
    (`Error from server (NotFound): pods "x" not found`). With `prefixes`, the caller takes a
    unique prefix for a name (a pod's generated suffix need not be typed): a prefix of several
    is told apart from a miss."""
    guess = closest(name, known)
    prefixed = sorted(k for k in known if k.startswith(name))
    if guess is None and len(prefixed) == 1:
        guess = prefixed[0]
    if guess:
        hint = f"did you mean `{guess}`?"
    elif prefixes and prefixed:  # a prefix too short to tell them apart
        hint = f"{len(prefixed)} begin so: {_some(prefixed)}; give more of the name"
    else:
        hint = hint_elsewhere or (f"known: {_some(sorted(known))}" if known else hint_none)
    if kind is not None:
        return not_found(kind, name, hint, code="E221")
    return KonvergeError(Diagnostic("E221", f"there is no {what} `{name}`", hint=hint))


def _some(names: list[str]) -> str:
    return ", ".join(names[:8]) + (", …" if len(names) > 8 else "")


def find(state: State, kind: str, namespace: str | None, name: str, what: str) -> dict:
    objs = [o for o in state.of_kind(kind) if o.get("namespace") == namespace]
    for o in objs:
        if o["name"] == name:
            return o
    # A unique prefix is enough: pod names end in generated suffixes.
    prefixed = [o for o in objs if o["name"].startswith(name)]
    if len(prefixed) == 1:
        return prefixed[0]
    where = f" in namespace {namespace}" if namespace else ""
    raise _missing(f"{what}{where}", name, [o["name"] for o in objs], f"there are no {what}s{where}",
                   elsewhere(state.of_kind(kind), kind, name, namespace, prefix=True), prefixes=True, kind=kind)


def _clock(c) -> str:
    return format_duration(c) if c else "0s"


def _table(headers: list[str], rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in [headers, *rows]]


# ---- explain ------------------------------------------------------------------------------------


def explain_view(program: Program, state: State, target: str, namespace: str | None = None) -> str:
    """`konverge explain KIND/NAME`."""
    kind_text, sep, name = target.partition("/")
    if not sep or not name:
        raise KonvergeError(Diagnostic("E222", f"`{target}` is not KIND/NAME", hint="e.g. endpoints/web"),
                            exit_code=2)
    info = resolve_kind(program, kind_text)
    ns = None if info.cluster else (namespace or "default")
    try:
        x = explain(program, state, info.name, ns, name)
    except KonvergeError as e:  # the core's E210, neither there nor ever written: in kubectl's words
        missing = next((d for d in e.diagnostics if d.code == "E210"), None)
        if missing is None:
            raise
        raise not_found(info.name, name, missing.hint, code="E210") from None
    text = render_explanation(x)
    if x.instances and any(not i.applies for i in x.instances):
        text += ("\n(a rule instance that set a field usually no longer holds: its condition tested that "
                 "field, and the write made it false — that is the fixed point)\n")
    return text


# ---- why-pending --------------------------------------------------------------------------------


def why_pending(program: Program, state: State, pod: str, namespace: str | None = None) -> str:
    """`konverge why-pending POD`: the scheduler's verdict for a Pending pod."""
    p = find(state, "Pod", namespace or "default", pod, "pod")
    ident = f"{p['namespace']}/{p['name']}"
    if p.get("node") or p.get("phase") != "Pending":
        where = f" on node {p['node']}" if p.get("node") else ""
        # In `get pods`' words: a pod evicted from a lost node is Terminating, not its phase, Running.
        raise KonvergeError(Diagnostic("E223", f"pod {ident} is not pending: it is {pod_status(p)}{where}",
                                       hint=f"konverge explain pod/{p['name']} shows why it is as it is"))
    lines = [f"Pod {ident} is Pending" + (f": {p['reason']}" if p.get("reason") else "")]
    if p.get("message"):
        lines.append(f"  {p['message']}")
    elif not p.get("reason"):
        lines.append("  the scheduler has not written a verdict (is the pod's schedulerName served?)")
    present = [r for r in SCHEDULER_RULES if _has_rule(program, r)]
    if not present:
        lines.append(f"  (no `{SCHEDULER_RULES[0]}` rule in this program: no per-node verdict)")
        return "\n".join(lines) + "\n"
    verdicts = [(rule, why_not(program, state, rule, p)) for rule in present]
    scheduler_rule, w = next(((r, v) for r, v in verdicts if v.applies), verdicts[0])
    reasons = program.defs.get("reasons")
    from ..eval import Evaluator
    from ..explain import _World

    ev = Evaluator(program, _World(state))
    rows = []
    nodes = {o["name"]: o for o in state.of_kind("Node")}
    rejected: dict[str, int] = {}
    for v in w.verdicts:
        found: list[str] = []
        if reasons is not None and len(reasons.params) == 2 and v.name in nodes:
            got = ev.eval(reasons.body, {reasons.params[0].name: p, reasons.params[1].name: nodes[v.name]})
            found = [str(x) for x in got or []]
        if v.failed is None:
            rows.append([v.name, "-", "fits"])
            continue
        # The scheduler plugin behind the reason, where `reasons` says; else the conjunct of the
        # pick that failed, as written (a spec's own rule may have others than `feasible`).
        failed = plugin(found[0]) if found else None
        if failed is None:
            failed = v.conjunct or v.failed
        rejected[failed] = rejected.get(failed, 0) + 1
        rows.append([v.name, failed, ", ".join(found) or v.detail or "-"])
    controller, _, rule = scheduler_rule.partition("/")
    rule_ast = next(r for r in program.controllers[controller].rules if r.name == rule)
    from ..explain import Sources

    where = f" where {Sources().text(rule_ast.pick.where)}" if rule_ast.pick and rule_ast.pick.where else ""
    fits = sum(1 for v in w.verdicts if v.failed is None)
    summary = f"{fits}/{len(w.verdicts)} nodes pass"
    if rejected:
        summary += "; rejected by " + ", ".join(f"{name} ({n})" for name, n in sorted(
            rejected.items(), key=lambda x: (-x[1], x[0])))
    lines.append("")
    lines.append(f"{scheduler_rule} picks a node{where}:")
    lines.append(f"  {summary}")
    lines.extend(_table(["NODE", "FAILED", "REASON" if reasons is None else "REASON (reasons(p, n))"], rows, "  "))
    if not w.applies:
        lines.append("")
        lines.append(f"  note: {scheduler_rule} does not apply to this pod now:")
        lines.extend(render_instance(instance_why(program, state, w.instance) or _no_instance(w), "    "))
    return "\n".join(lines) + "\n"


def _has_rule(program: Program, name: str) -> bool:
    controller, _, rule = name.partition("/")
    return controller in program.controllers and any(r.name == rule for r in program.controllers[controller].rules)


# The filter plugin each of the scheduler's reasons comes from (rules/scheduler.konv, `reasons`),
# as Kubernetes' scheduling framework names them.
PLUGINS = (
    ("node(s) were unschedulable", "NodeUnschedulable"),
    ("node(s) had untolerated taint", "TaintToleration"),
    ("node(s) didn't match Pod's node affinity/selector", "NodeAffinity"),
    ("node(s) didn't have free ports for the requested pod ports", "NodePorts"),
    ("Too many pods", "NodeResourcesFit"),
    ("Insufficient ", "NodeResourcesFit"),
    ("node(s) didn't match pod topology spread constraints", "PodTopologySpread"),
    ("node(s) didn't match pod affinity rules", "InterPodAffinity"),
    ("node(s) didn't match pod anti-affinity rules", "InterPodAffinity"),
    ("node(s) didn't satisfy existing pods anti-affinity rules", "InterPodAffinity"),
)


def plugin(reason: str) -> str | None:
    """The scheduler plugin that gives this reason, or None for a reason it does not know."""
    return next((name for prefix, name in PLUGINS if reason.startswith(prefix)), None)


def _no_instance(w):
    from ..explain import InstanceWhy

    return InstanceWhy(w.instance, w.rule, "", True, w.applies, w.conditions)


# ---- trace --------------------------------------------------------------------------------------


def trace_view(program: Program, state: State, pod: str | None = None, namespace: str | None = None) -> str:
    """`konverge trace [--pod NAME]`."""
    if pod is None:
        rows = [[str(w.revision), _clock(w.clock), w.actor if not w.rule else f"{w.actor}/{w.rule}", w.verb,
                 key_text(object_key(w.kind, w.namespace, w.name)), w.message] for w in state.trace]
        return "\n".join(_table(["REVISION", "CLOCK", "BY", "VERB", "OBJECT", "MESSAGE"], rows)) + "\n"
    ns = namespace or "default"
    writes = pod_writes(state, pod, ns)
    rows = [[str(w.revision), _clock(w.clock), component(w),
             w.verb if not w.rule or w.actor in ("spec",) else f"{w.verb} ({w.rule})",
             key_text(object_key(w.kind, w.namespace, w.name))] for w in writes]
    head = f"Pod {ns}/{_pod_name(state, pod, ns)}: {len(writes)} writes, in revision order"
    return head + "\n" + "\n".join(_table(["REVISION", "CLOCK", "COMPONENT", "ACTION", "OBJECT"], rows)) + "\n"


def _pod_name(state: State, pod: str, ns: str) -> str:
    names = {w.name for w in state.trace if w.kind == "Pod" and w.namespace == ns}
    names |= {o["name"] for o in state.of_kind("Pod") if o.get("namespace") == ns}
    if pod in names:
        return pod
    prefixed = sorted(n for n in names if n.startswith(pod))
    if len(prefixed) == 1:
        return prefixed[0]
    written = [{"kind": "Pod", "namespace": w.namespace, "name": w.name} for w in state.trace if w.kind == "Pod"]
    raise _missing(f"pod in namespace {ns}", pod, sorted(names), f"there are no pods in namespace {ns}",
                   elsewhere(written + state.of_kind("Pod"), "Pod", pod, ns, prefix=True), prefixes=True,
                   kind="Pod")


def pod_writes(state: State, pod: str, ns: str) -> list[Write]:
    """The writes of the pod creation sequence: to the pod, its owners up to its creation, the
    IP block its address came from, and the endpoints and routes that reacted to it."""
    name = _pod_name(state, pod, ns)
    key = ("Pod", ns, name)
    mine = [w for w in state.trace if object_key(w.kind, w.namespace, w.name) == key]
    obj = state.get(key)
    created = min((w.revision for w in mine if w.verb == "create"), default=0)
    picked: dict[int, Write] = {id(w): w for w in mine}
    # Owners, as far as the pod's creation: the deployment made the set that made the pod.
    owners = []
    owner = (obj or {}).get("owner")
    seen_owner = set()
    while isinstance(owner, dict) and owner.get("kind") and (owner["kind"], owner.get("name")) not in seen_owner:
        seen_owner.add((owner["kind"], owner.get("name")))
        okey = (owner["kind"], ns, owner["name"])
        owners.append(okey)
        owner = (state.get(okey) or {}).get("owner")
    for w in state.trace:
        if object_key(w.kind, w.namespace, w.name) in owners and w.revision <= created:
            picked[id(w)] = w
    # The IP block holding the pod's address.
    ip = (obj or {}).get("ip")
    if ip:
        for b in state.of_kind("IPBlock"):
            try:
                inside = ipaddress.ip_address(ip) in ipaddress.ip_network(b["cidr"], strict=False)
            except (KeyError, ValueError, TypeError):
                inside = False
            if inside:
                for w in state.trace:
                    if w.kind == "IPBlock" and w.name == b["name"] and w.verb == "create":
                        picked[id(w)] = w
    # Endpoints listing the pod: each write that followed a write to the pod.
    # (Only from the pod's address on: before it, no endpoints can list the pod.)
    addressed = min((w.revision for w in mine if w.actor == "calico_ipam"), default=0)
    pod_revs = sorted(w.revision for w in mine if w.verb != "refused" and w.revision >= addressed)
    reacted = []
    for e in state.of_kind("Endpoints"):
        if e.get("namespace") != ns:
            continue
        listed = any(a.get("pod") == name for a in (e.get("addresses") or []) + (e.get("notReadyAddresses") or []))
        if not listed:
            continue
        ekey = object_key("Endpoints", ns, e["name"])
        ewrites = [w for w in state.trace if object_key(w.kind, w.namespace, w.name) == ekey]
        for i, r in enumerate(pod_revs):
            nxt = pod_revs[i + 1] if i + 1 < len(pod_revs) else None
            follow = next((w for w in ewrites if w.revision > r and (nxt is None or w.revision < nxt)), None)
            if follow is not None:
                picked[id(follow)] = follow
                reacted.append((e["namespace"] + "/" + e["name"], follow.revision))
    # Routes for those services: the proxy's first write after the endpoints changed.
    for service, rev in sorted({(s, max(r for s2, r in reacted if s2 == s)) for s, _ in reacted}):
        for route in state.of_kind("Route"):
            if route.get("service") != service:
                continue
            rkey = object_key("Route", route.get("namespace"), route["name"])
            rwrites = [w for w in state.trace if object_key(w.kind, w.namespace, w.name) == rkey]
            follow = next((w for w in rwrites if w.revision > rev), rwrites[-1] if rwrites else None)
            if follow is not None:
                picked[id(follow)] = follow
    return sorted(picked.values(), key=lambda w: (w.revision, w.step))


# ---- route --------------------------------------------------------------------------------------


def shares(probabilities: list[float]) -> list[float]:
    """Each endpoint's effective share: endpoint i is taken with probability p_i among those
    left, so its share is p_i times the chance that none before it was taken."""
    left = Fraction(1)
    out = []
    for p in probabilities:
        p = Fraction(p).limit_denominator(10_000)
        out.append(float(left * p))
        left *= 1 - p
    return out


def route_view(program: Program, state: State, target: str, *, from_node: str | None = None,
               namespace: str | None = None, node_port: bool = False) -> str:
    """`konverge route SERVICE[:PORT] [--from NODE] [--node-port]`: where a request to the
    service goes — to its cluster IP, or with `node_port` to its node port on the node."""
    ns = namespace or "default"
    name, _, port_text = target.partition(":")
    svc = find(state, "Service", ns, name, "service")
    nodes = sorted(o["name"] for o in state.of_kind("Node"))
    if not nodes:
        raise KonvergeError(Diagnostic("E224", "the cluster has no nodes, so no kube-proxy programs routes"))
    node = from_node or nodes[0]
    if node not in nodes:
        raise _missing("node", node, nodes, "", kind="Node")
    ident = f"{ns}/{svc['name']}"
    # Every node's proxy holds the same table (rules/proxy.konv): a Route per service port.
    routes = sorted((r for r in state.of_kind("Route") if r.get("service") == ident),
                    key=lambda r: (r.get("port") or 0, r.get("protocol") or ""))
    if node_port and not any(sp.get("nodePort") for sp in svc.get("ports") or []):
        raise _no_node_ports(svc, ident)
    if svc.get("clusterIP") == "None":
        return _headless_view(state, svc, ns, ident, port_text)
    if port_text:
        ports = [str(r.get("port")) for r in routes] + [
            str(sp.get("name")) for sp in svc.get("ports") or [] if sp.get("name")]
        by_name = {sp.get("name"): sp.get("port") for sp in svc.get("ports") or []}
        wanted = by_name.get(port_text, port_text)
        if node_port:  # the node port itself names its service port too
            ports += [str(r.get("nodePort")) for r in routes if r.get("nodePort")]
            routes = [r for r in routes if str(wanted) in (str(r.get("port")), str(r.get("nodePort")))]
        else:
            routes = [r for r in routes if str(r.get("port")) == str(wanted)]
        if not routes:
            raise _missing(f"port on service {ident}", port_text, ports, "the service has no ports")
    if node_port:
        return _node_port_view(state, svc, ns, ident, node, routes)
    lines = [f"Service {ident}, seen from node {node} (kube-proxy, iptables mode)"]
    if not routes:
        why = "it has no cluster IP" if svc.get("clusterIP") is None else "kube-proxy has written no route for it"
        lines.append(f"  no routes: {why}")
        return "\n".join(lines) + "\n"
    pods_by_ip = _endpoint_addresses(state, ns, svc["name"])
    for r in routes:
        head = f"  {r.get('clusterIP')}:{r.get('port')}/{r.get('protocol')}"
        if r.get("action") == "REJECT" or not r.get("backends"):
            lines.append(f"{head} → REJECT (no ready endpoints)")
        else:
            backends = r.get("backends") or []
            lines.append(f"{head} → {len(backends)} endpoint(s)")
            lines.extend(_backend_table(backends, pods_by_ip, r.get("sessionAffinity")))
        if r.get("nodePort"):
            in_ns = f" -n {ns}" if ns != "default" else ""
            lines.append(f"    node port {r['nodePort']} on every node: konverge route {svc['name']}:{r.get('port')} "
                         f"--node-port --from NODE{in_ns}")
    return "\n".join(lines) + "\n"


def _headless_view(state: State, svc: dict, ns: str, ident: str, port_text: str) -> str:
    """A headless service (clusterIP None): kube-proxy skips it (ShouldSkipService), and cluster
    DNS answers its name with the addresses of its Endpoints (CoreDNS's kubernetes plugin: an A
    record per address, the not-ready ones left out unless publishNotReadyAddresses put them
    there), so its clients connect to the pods themselves. No DNS server is modelled: this is
    what one would answer. `port_text` narrows it to the addresses behind one port."""
    ports = svc.get("ports") or []
    wanted = None
    if port_text:
        match = [sp for sp in ports if port_text in (str(sp.get("port")), sp.get("name"))]
        if not match:
            known = [str(sp.get("port")) for sp in ports] + [sp.get("name") for sp in ports if sp.get("name")]
            raise _missing(f"port on service {ident}", port_text, known, "the service has no ports")
        wanted = match[0].get("name") or ""
    endpoints = next((e for e in state.of_kind("Endpoints") if e.get("namespace") == ns and e["name"] == svc["name"]),
                     {})
    protocols = {sp.get("name") or "": sp.get("protocol") or "TCP" for sp in ports}
    ready: dict[str, dict] = {}  # address → the pod, node and ports behind it
    for a in endpoints.get("addresses") or []:
        if wanted is None or a.get("portName") == wanted:
            row = ready.setdefault(a.get("ip"), {"pod": a.get("pod"), "node": a.get("node"), "ports": []})
            if a.get("port") is not None:
                row["ports"].append(f"{a['port']}/{protocols.get(a.get('portName') or '', 'TCP')}")
    not_ready = {a.get("ip") for a in endpoints.get("notReadyAddresses") or []
                 if wanted is None or a.get("portName") == wanted}
    fqdn = f"{svc['name']}.{ns}.svc.cluster.local"
    lines = [f"Service {ident} is headless (clusterIP None): kube-proxy programs no rules for it, on any node"]
    if not ready and not svc.get("selector"):
        # No endpoints controller writes them (syncService skips a service without a selector).
        held = "hold no ready address" if endpoints else "are not written"
        lines.append(f"  DNS {fqdn} has no address to answer with: the service has no selector, and its "
                     f"Endpoints, the user's to write, {held}")
    elif not ready:
        lines.append(f"  DNS {fqdn} has no address to answer with: the service has no ready endpoints")
    else:
        lines.append(f"  DNS {fqdn} answers with the {len(ready)} address(es) its Endpoints publish; "
                     "clients connect to the pods directly")
        order = sorted(ready, key=_ip_order)
        rows = [[ip, ",".join(ready[ip]["ports"]) or "<none>", ready[ip]["pod"] or "-", ready[ip]["node"] or "-"]
                for ip in order]
        lines.extend(_table(["ADDRESS", "PORTS", "POD", "NODE"], rows, "    "))
    if not_ready:
        lines.append(f"  ({len(not_ready)} not-ready endpoint(s) left out: publishNotReadyAddresses is false)")
    return "\n".join(lines) + "\n"


def _ip_order(ip) -> tuple:
    """Addresses in numeric order (10.0.0.9 before 10.0.0.10); text that is none after them."""
    try:
        a = ipaddress.ip_address(ip)
        return (0, a.version, int(a))
    except (TypeError, ValueError):
        return (1, 0, 0)


def _no_node_ports(svc: dict, ident: str) -> KonvergeError:
    """E225, with the reason the service's ports have no node port (rules/ipam.konv)."""
    kind = svc.get("type") or "ClusterIP"
    back = "drop --node-port to route its cluster IP"
    if svc.get("clusterIP") == "None":
        why, hint = f"it is headless (clusterIP None, type {kind})", "drop --node-port to see what DNS answers for it"
    elif kind not in ("NodePort", "LoadBalancer"):
        why, hint = f"it is of type {kind}", f"a NodePort or LoadBalancer service has them; {back}"
    elif not svc.get("ports"):
        why, hint = "it has no ports", "give it a port"
    elif kind == "LoadBalancer" and svc.get("allocateLoadBalancerNodePorts") is False:
        why, hint = "it is a LoadBalancer with allocateLoadBalancerNodePorts false", back
    else:
        why = "the allocator found no free node port for them (256 looks a port)"
        hint = f"free node ports by deleting services that hold them, or name a free nodePort; {back}"
    return KonvergeError(Diagnostic("E225", f"service {ident} has no node ports: {why}", hint=hint))


def _endpoint_addresses(state: State, ns: str, name: str) -> dict:
    """The service's ready addresses by (ip, port): the pod and node behind each backend."""
    out = {}
    for e in state.of_kind("Endpoints"):
        if e.get("namespace") == ns and e["name"] == name:
            for a in e.get("addresses") or []:
                out[(a.get("ip"), a.get("port"))] = a
    return out


def _backend_table(backends: list[dict], pods_by_ip: dict, affinity: str | None = None) -> list[str]:
    """The endpoints a chain picks from, with their shares; and ClientIP affinity, which upstream's
    service and local chains both apply (`-m recent`), for the cluster IP and node ports alike."""
    rows = []
    for b, share in zip(backends, shares([b.get("probability") or 0 for b in backends])):
        a = pods_by_ip.get((b.get("ip"), b.get("port")), {})
        rows.append([f"{b.get('ip')}:{b.get('port')}", f"{share * 100:.1f}%", a.get("pod") or "-",
                     a.get("node") or "-"])
    pinned = ["    sessionAffinity ClientIP: a client stays with its first endpoint for 10800 s"]
    return _table(["ENDPOINT", "SHARE", "POD", "NODE"], rows, "    ") + (pinned if affinity == "ClientIP" else [])


def _node_port_view(state: State, svc: dict, ns: str, ident: str, node: str, routes: list[dict]) -> str:
    """Where a request to NODE:NODEPORT goes (rules/proxy.konv): KUBE-NODEPORTS → KUBE-EXT → the
    service chain under externalTrafficPolicy Cluster, or this node's own endpoints under Local;
    REJECT without any ready endpoint, DROP under Local without one on this node. Under Local,
    KUBE-EXT's first rules send traffic from the node itself (`--src-type LOCAL`) and from any pod
    (the local detector: the cluster CIDR) to the service chain, all endpoints, whether or not the
    node has local ones. The chains' comments name the port as kube-proxy does (ServicePortName:
    namespace/name:portname)."""
    lines = [f"Service {ident}, its node ports on node {node} (kube-proxy, iptables mode)"]
    port_names = {(sp.get("port"), sp.get("protocol") or "TCP"): sp.get("name") or "" for sp in svc.get("ports") or []}
    pods_by_ip = _endpoint_addresses(state, ns, svc["name"])
    for r in routes:
        port_name = port_names.get((r.get("port"), r.get("protocol")), "")
        chain = ident + (f":{port_name}" if port_name else "")
        if not r.get("nodePort"):
            why = ("allocateLoadBalancerNodePorts false" if svc.get("allocateLoadBalancerNodePorts") is False
                   else "the allocator found none free")
            lines.append(f"  {r.get('port')}/{r.get('protocol')}: no node port ({why})")
            continue
        policy = r.get("externalTrafficPolicy") or "Cluster"
        head = f"  {node}:{r['nodePort']}/{r.get('protocol')} (port {r.get('port')})"
        if r.get("action") == "REJECT" or not r.get("backends"):
            lines.append(f'{head} → REJECT: "{chain} has no endpoints" (no ready endpoints)')
            continue
        if policy != "Local":
            backends = r.get("backends") or []
            lines.append(f"{head} → {len(backends)} endpoint(s) (externalTrafficPolicy {policy}: the cluster "
                         f"IP's, on any node)")
            lines.extend(_backend_table(backends, pods_by_ip, r.get("sessionAffinity")))
            continue
        mine = next((x.get("backends") or [] for x in r.get("localBackends") or [] if x.get("node") == node), [])
        inside = (f"    (a request from {node} itself or from any pod goes to the cluster IP's "
                  f"{len(r.get('backends') or [])} endpoint(s), on any node)")
        if not mine:
            lines.append(f'{head} → DROP: "{chain} has no local endpoints" (externalTrafficPolicy Local, '
                         f"no ready endpoint on {node})")
            lines.append(inside)
            continue
        lines.append(f"{head} → {len(mine)} endpoint(s) (externalTrafficPolicy Local: {node}'s own; the client's "
                     f"source IP is kept)")
        lines.extend(_backend_table(mine, pods_by_ip, r.get("sessionAffinity")))
        lines.append(inside)
    return "\n".join(lines) + "\n"


# ---- the commands --------------------------------------------------------------------------------


def add_commands(sub) -> None:
    """Register explain, why-pending, trace and route with the CLI's subparsers."""
    from ..cli import intermixed, no_std_option

    def common(p):
        intermixed(p)
        p.add_argument("files", nargs="*", metavar="SPEC",
                       help=".konv specs and Kubernetes manifests (.yaml, .yml, .json), mixed freely, or "
                            "directories; reconciled in memory")
        p.add_argument("--scenario", metavar="NAME|FILE",
                       help="play a scenario first: the name of one declared in the specs, or a file holding one")
        p.add_argument("--data-dir", metavar="DIR", help="show a persisted store instead (read-only)")
        p.add_argument("-n", "--namespace", help="the namespace (default: default)")
        no_std_option(p)

    e = sub.add_parser("explain", help="why an object is as it is: its writes and the rules behind them")
    e.add_argument("target", metavar="KIND/NAME")
    common(e)
    e.set_defaults(one_run=True, example="konverge explain endpoints/web specs/demo.konv",
                   run=lambda a: _run(a, lambda prog, st: explain_view(prog, st, a.target, a.namespace)))

    w = sub.add_parser("why-pending", help="why a pod is Pending: the scheduler's verdict, node by node")
    w.add_argument("pod", metavar="POD")
    common(w)
    w.set_defaults(one_run=True, example="konverge why-pending huge tests/data/unschedulable.konv",
                   run=lambda a: _run(a, lambda prog, st: why_pending(prog, st, a.pod, a.namespace)))

    t = sub.add_parser("trace", help="the writes in order: all of them, or a pod's creation sequence")
    t.add_argument("--pod", metavar="NAME", help="the writes of this pod's creation sequence")
    common(t)
    t.set_defaults(one_run=True, example="konverge trace specs/demo.konv",
                   run=lambda a: _run(a, lambda prog, st: trace_view(prog, st, a.pod, a.namespace)))

    r = sub.add_parser("route", help="where a request to a service goes, as kube-proxy routes it",
                       description="Where a request to SERVICE[:PORT] (a port's number or name) goes, as the "
                                   "kube-proxy of a node routes it: to the cluster IP, or with --node-port to "
                                   "NODE:NODEPORT (PORT may then be the node port itself: `route web:30080 "
                                   "--node-port --from worker-2`).")
    r.add_argument("service", metavar="SERVICE[:PORT]")
    r.add_argument("--from", dest="from_node", metavar="NODE", help="the node it is seen from (default: the first)")
    r.add_argument("--node-port", action="store_true",
                   help="a request to the service's node port on the --from node, not to its cluster IP")
    common(r)
    r.set_defaults(one_run=True, example="konverge route web specs/demo.konv",
                   run=lambda a: _run(a, lambda prog, st: route_view(
                       prog, st, a.service, from_node=a.from_node, namespace=a.namespace,
                       node_port=a.node_port)))


def _run(args, view) -> int:
    program, state = load(args.files, scenario=args.scenario, data_dir=args.data_dir, std=not args.no_std,
                          example=args.example)
    with located(args.data_dir or ", ".join(args.files)):  # say which cluster the view looked at
        text = view(program, state)
    sys.stdout.write(text)
    return 0


__all__ = ["add_commands", "explain_view", "load", "pod_writes", "route_view", "shares", "trace_view",
           "why_pending"]
