"""Konverge: a Kubernetes control plane written as rules."""

__version__ = "0.1.0"
