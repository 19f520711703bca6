"""The durable usage ledger: one record per request, never lost."""
