"""Random clusters of pods and services for the endpoints and proxy properties, as the model of
tests/service_model.py describes them, written as Konverge specs, and the pods read back."""

import json

from hypothesis import strategies as st

from tests import service_model as model
from tests.kube import SICK_CONTAINER, node, run, sick_event, sick_node

LABELS = {"app": ("web", "api"), "tier": ("a", "b")}
# Where a pod is put, and what becomes of it: (spec text, scenario lines). The nodes are n1 and n2
# (healthy: a service's ready endpoints may be on either, as externalTrafficPolicy Local tells), sick
# (tests/kube.py sick_node: its pods' containers crash and its runtime goes down at 5 s while they wait
# to restart: the pods run but are not ready; a pod killed there stays terminating, as its kubelet syncs
# no pod) and far (its kubelet fails at 30 s: the pods stay, not ready once the node is; a pod killed
# there stays terminating).
PLACES = {
    "n1": ('node: "n1"', ""),
    "n2": ('node: "n2"', ""),
    "scheduled": ("", ""),
    "sick": ('node: "sick"  tolerations: [{operator: "Exists"}]', ""),
    "sick-killed": ('node: "sick"  tolerations: [{operator: "Exists"}]', "at 40s: kill pod {name}\n"),
    "far": ('node: "far"  tolerations: [{operator: "Exists"}]', ""),
    "far-killed": ('node: "far"  tolerations: [{operator: "Exists"}]', "at 40s: kill pod {name}\n"),
    "killed": ('node: "n1"', "at 40s: kill pod {name}\n"),
    "pending": ('nodeSelector { none: "x" }', ""),
    "failed": ('node: "n1"  restartPolicy: "Never"', ""),
}
PORT_NAMES = ("http", "dns", "metrics")


def _labels(labels: dict) -> str:
    return "  ".join(f'{k}: "{v}"' for k, v in labels.items())


@st.composite
def endpoint_clusters(draw):
    """Up to 8 pods in every state the endpoints controller tells apart, with 1–2 containers of
    named and unnamed ports (a name once a container, a number once a pod, TCP or UDP), and up to 3
    services selecting some of them, each with 0–2 ports whose targetPort is left out, a number
    or a name, of type ClusterIP, NodePort or LoadBalancer (externalTrafficPolicy Cluster or Local)."""
    number = st.sampled_from((8080, 53, 9000, 80))
    pods = []
    for i in range(draw(st.integers(0, 8))):
        numbers = iter(draw(st.permutations((8080, 53, 9000, 80, 8081, 54))))
        containers = []
        for _ in range(draw(st.integers(1, 2))):
            names = draw(st.lists(st.sampled_from(PORT_NAMES + ("",) * 2), max_size=2))
            names = [n for j, n in enumerate(names) if not n or n not in names[:j]]
            containers.append(tuple(model.ContainerPort(n, next(numbers), draw(st.sampled_from(("TCP", "TCP", "UDP"))))
                                    for n in names))
        namespace = draw(st.sampled_from(("default",) * 5 + ("other",)))
        place = draw(st.sampled_from(tuple(p for p, (_, event) in PLACES.items() if namespace == "default" or not event)))
        labels = {k: draw(st.sampled_from(v)) for k, v in LABELS.items() if draw(st.integers(0, 3))}
        pods.append((model.Pod(f"p{i}", labels, tuple(containers), namespace), place))
    if draw(st.integers(0, 3)) == 0:  # a crowd, so that addresses such as .1 and .10 meet, on two nodes
        crowd = (model.ContainerPort("http", 8080),)
        pods += [(model.Pod(f"q{i}", {"app": "web"}, (crowd,)), "n1") for i in range(draw(st.integers(8, 11)))]
        pods += [(model.Pod(f"r{i}", {"app": "web"}, (crowd,)), "n2") for i in range(2)]  # and some on n2
    services = []
    for i in range(draw(st.integers(1, 3))):
        selector = {k: draw(st.sampled_from(v)) for k, v in LABELS.items() if draw(st.integers(0, 2))}
        ports = []
        for j, port in enumerate(draw(st.lists(number, max_size=2, unique=True))):
            target = draw(st.one_of(st.none(), number, st.sampled_from(PORT_NAMES)))
            ports.append(model.ServicePort(f"p{j}", port, target, draw(st.sampled_from(("TCP", "TCP", "UDP")))))
        if len(ports) == 1 and draw(st.booleans()):
            ports = [model.ServicePort("", ports[0].port, ports[0].target, ports[0].protocol)]
        kind = draw(st.sampled_from(("ClusterIP", "ClusterIP", "NodePort", "LoadBalancer")))
        policy = None if kind == "ClusterIP" else draw(st.sampled_from(("Cluster", "Local")))
        services.append(model.Service(f"s{i}", selector, tuple(ports), publish_not_ready=draw(st.booleans()),
                                      session_affinity=draw(st.sampled_from(("None", "ClientIP"))),
                                      type=kind, external_traffic_policy=policy))
    return pods, services


def endpoints_spec(pods, services) -> str:
    text = [node("n1"), node("n2"), sick_node(), node("far"), "namespace other {}\n"]
    events = []
    for pod, place in pods:
        where, event = PLACES[place]
        containers = "".join(
            f'  container c{i} {{ image: "x"  cpu: 10m  memory: 16Mi  {SICK_CONTAINER if place in ("failed", "sick", "sick-killed") else ""}\n'
            f'    ports: [{", ".join(f"{{name: {chr(34)}{p.name}{chr(34)}, containerPort: {p.number}, protocol: {chr(34)}{p.protocol}{chr(34)}}}" for p in ports)}] }}\n'
            for i, ports in enumerate(pod.ports))
        text.append(f"pod {pod.name} in {pod.namespace} {{ labels {{ {_labels(pod.labels)} }}  {where}\n{containers}}}\n")
        events.append(event.format(name=pod.name))
    for s in services:
        ports = ", ".join(f'{{name: "{p.name}", port: {p.port}, protocol: "{p.protocol}"'
                          + ("" if p.target is None else f", targetPort: {json.dumps(p.target)}") + "}"
                          for p in s.ports)
        policy = f'  externalTrafficPolicy: "{s.external_traffic_policy}"' if s.external_traffic_policy else ""
        text.append(f"service {s.name} {{ selector {{ {_labels(s.selector)} }}  ports: [{ports}]\n"
                    f'  publishNotReadyAddresses: {str(s.publish_not_ready).lower()}  sessionAffinity: "{s.session_affinity}"\n'
                    f'  type: "{s.type}"{policy} }}\n')
    text.append('scenario "life" {\n  ' + sick_event() + '  at 30s: fail node far\n' + "".join(events) + "}\n")
    return "".join(text)


def observed_pods(c, pods):
    """The model's pods, with the status Konverge's kubelet, scheduler and node controller gave them."""
    out = []
    for pod, _ in pods:
        got = c.get("Pod", pod.name, pod.namespace)
        if got is None:
            continue  # deleted
        out.append(model.Pod(pod.name, pod.labels, pod.ports, pod.namespace, got["ip"], got["node"] or "",
                             got["phase"], got["ready"], got["deleting"]))
    return out


def reconciled(cluster):
    """A drawn cluster reconciled through its scenario: (the run, the model's pods as Konverge left
    them, the services)."""
    pods, services = cluster
    c = run(endpoints_spec(pods, services), until=900)
    return c, observed_pods(c, pods), services
