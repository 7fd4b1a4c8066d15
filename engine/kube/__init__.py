"""The Kubernetes edge: what cannot be rules and still knows Kubernetes.

Reading Kubernetes YAML manifests (`manifests`), the JSON contract of
`konverge reconcile -o json` (`contract`), kubectl-like tables and `describe`
(`tables`), the views explain, why-pending, trace and route (`views`), and the
node and pod scopes of `verify --exhaustive` (`scope`). The core — parse, check, api, store, fixpoint — never
imports this package; it imports them.
"""
