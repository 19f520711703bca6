"""Provider adapters, one per upstream protocol, behind the contract and registry in ``base.py``.

The adapters (``openai_compat``, ``anthropic``, ``gemini`` with ``gemini_request``, ``llamacpp``
for the embedded engine, ``managed`` for an engine server Inferplane starts); what the remote
ones share (``hosted``); their transport: the pooled upstream with deadlines and error mapping
(``upstream``), its HTTP/1.1 client (``http_client``) and the decoder of the upstream's
server-sent events (``sse_decoder``).
"""
