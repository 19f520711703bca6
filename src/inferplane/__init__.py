"""Inferplane: an inference control plane in front of every model a team runs or buys."""

__version__ = "0.1.0"
