"""The OpenAI Responses API's state: stored responses (``store.py``), tenant-scoped, kept for
``responses.retention_days``. The protocol itself (parsing, rendering, the event stream) is in
``api/responses_*.py``."""
