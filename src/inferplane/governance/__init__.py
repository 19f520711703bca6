"""Model lifecycle and governance: evaluation suites and their runner."""
