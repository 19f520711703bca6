"""Metrics, tracing and alerts: what the gateway tells operators about itself."""
