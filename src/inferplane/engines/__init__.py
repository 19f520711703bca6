"""The engines Inferplane runs itself: embedded llama.cpp in a supervised worker process, and
engine servers (llama-server, vLLM, SGLang) it starts and supervises (docs/engines.md).

The worker's decode loop (``worker``) over llama.cpp's C API (``llama``), its continuous-batching
bookkeeping (``scheduler``), chat templates (``chat_template``), stop strings (``stopper``), the
model files it loads (``model_files``) and the supervisor that starts and restarts it
(``supervisor``).

The engine servers: their command lines (``launch``, a builder per kind), programs and start
checks (``programs``), supervision (``managed``, with ``backoff`` shared with the worker's
supervisor), metrics (``engine_metrics``: a parser per kind; ``scraper`` reads them;
``http_get``), measured GPU energy (``engine_energy``) and observed step times
(``step_log``). The worker's numpy samplers are ``sampling``.
"""
