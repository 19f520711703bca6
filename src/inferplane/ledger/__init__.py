"""The durable usage ledger: one record per request, never lost.

A record (``record``) is appended to a write-ahead log (``wal``) in a directory bound to its
store (``waldir``) before its response ends, and moved into the SQL store (``store``, with its
``migrations``) in groups by a committer thread (``committer``); ``service`` ties them together.
Reports read the store (``stats``, ``report``, ``plot``).
"""
