"""Engines Inferplane starts and supervises itself (the embedded llama.cpp worker)."""
