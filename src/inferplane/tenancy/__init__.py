"""Tenants, API keys, budgets and rate limits: who may call, what they may spend, how fast."""
