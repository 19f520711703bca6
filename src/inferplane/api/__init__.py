"""The HTTP surface: OpenAI-compatible endpoints and health probes."""
