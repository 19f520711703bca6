"""The tamper-evident audit log: every governance event (tenants, keys, budgets, the
configuration a gateway starts with, each ledger group commit) is a leaf of an append-only
Merkle tree (RFC 9162), whose signed checkpoints (C2SP signed notes, Ed25519) let anyone
holding an earlier one check that nothing was removed or rewritten since.

By module: ``merkle`` (the tree, proofs and their verification: pure), ``entries`` (an entry's
canonical bytes), ``signer`` (the Ed25519 key and the note key formats), ``checkpoint`` (the
signed tree head text), ``store`` (the tables and the in-transaction append), ``tree`` (roots
and proofs from stored hashes, cached), ``verify`` (checking stored rows against signed
checkpoints: pure), ``records`` (usage records against their ``ledger.batch`` digest: pure),
``covering`` (reading them for ``audit verify``), ``log`` (the service the gateway, API and
CLI use). docs/audit.md has the formats and how to verify a log independently.
"""
