"""A generated cluster spec of realistic objects, for the benches.

`generate_spec(n_objects, seed)` writes nodes, pods with containers,
deployments and services of the standard kinds in rules/kinds.konv, with
labels — about six lines per object, like a dump of a real cluster. The same
seed gives the same text.
"""

from __future__ import annotations

import random

APPS = ["web", "api", "cart", "search", "auth", "billing", "db", "cache", "queue", "mail"]
IMAGES = ["nginx:1.27", "redis:7.2", "postgres:16", "envoy:1.30", "busybox:1.36", "node:20-alpine"]
NAMESPACES = ["shop", "payments", "platform", "default"]
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def generate_spec(n_objects: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    out = []
    n_nodes = max(1, n_objects // 10)
    for i in range(n_objects):
        if i < n_nodes:
            out.append(_node(rng, i))
            continue
        r = rng.random()
        if r < 0.6:
            out.append(_pod(rng, i, n_nodes))
        elif r < 0.8:
            out.append(_deployment(rng, i))
        else:
            out.append(_service(rng, i))
    return "".join(out)


def _node(rng: random.Random, i: int) -> str:
    zone = rng.choice(ZONES)
    return (
        f"node worker-{i} {{\n"
        f"  cpu: {rng.choice([4, 8, 16, 32])}  memory: {rng.choice([16, 32, 64])}Gi\n"
        f'  labels {{ zone: "{zone}" "kubernetes.io/hostname": "worker-{i}" }}\n'
        f"  podCIDRs: [10.{i // 250 % 250}.{i % 250}.0/24]\n"
        f"}}\n"
    )


def _container(rng: random.Random, name: str) -> str:
    return (
        f'  container {name} {{ image: "{rng.choice(IMAGES)}"  '
        f"cpu: {rng.choice([100, 250, 500])}m  memory: {rng.choice([64, 128, 256])}Mi  "
        f"ports: [{{containerPort: {rng.choice([80, 8080, 9090])}}}] }}\n"
    )


def _pod(rng: random.Random, i: int, n_nodes: int) -> str:
    app = rng.choice(APPS)
    lines = [
        f"pod {app}-{i} in {rng.choice(NAMESPACES)} {{\n",
        f'  labels {{ app: "{app}" tier: "{rng.randint(1, 3)}" }}\n',
        f'  node: "worker-{rng.randrange(n_nodes)}"\n',
        _container(rng, app),
    ]
    if rng.random() < 0.3:
        lines.append(_container(rng, "sidecar"))
    lines.append('  restartPolicy: "Always"  # the default, spelt out\n' if rng.random() < 0.1
                 else '  restartPolicy: "Always"\n')
    lines.append("}\n")
    return "".join(lines)


def _deployment(rng: random.Random, i: int) -> str:
    app = rng.choice(APPS)
    return (
        f"deployment {app}-{i} in {rng.choice(NAMESPACES)} {{\n"
        f"  replicas: {rng.randint(1, 5)}\n"
        f'  labels {{ app: "{app}" }}\n'
        f'  selector: {{app: "{app}", release: "r{i}"}}\n'
        f'  template {{\n'
        f'    labels {{ app: "{app}" release: "r{i}" }}\n'
        + "  " + _container(rng, app)
        + "  }\n}\n"
    )


def _service(rng: random.Random, i: int) -> str:
    app = rng.choice(APPS)
    return (
        f"service {app}-{i} in {rng.choice(NAMESPACES)} {{\n"
        f'  selector {{ app: "{app}" }}\n'
        f"  port http {{ port: 80  targetPort: 8080 }}\n"
        f"  port https {{ port: 443  targetPort: 8443 }}\n"
        f"  clusterIP: 10.96.{i // 250 % 250}.{i % 250}\n"
        f"}}\n"
    )
