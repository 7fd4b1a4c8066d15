"""The Kubernetes edge: what cannot be rules and still knows Kubernetes.

Reading Kubernetes YAML manifests (`manifests`), the JSON contract of
`konverge reconcile -o json` (`contract`), and kubectl-like tables and
`describe` (`tables`). The core — parse, check, api, store, fixpoint — never
imports this package; it imports them.
"""
