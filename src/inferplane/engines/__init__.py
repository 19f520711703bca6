"""The engine Inferplane runs itself: embedded llama.cpp in a supervised worker process.

The worker's decode loop (``worker``) over llama.cpp's C API (``llama``), its continuous-batching
bookkeeping (``scheduler``), chat templates (``chat_template``), stop strings (``stopper``), the
model files it loads (``model_files``) and the supervisor that starts and restarts it
(``supervisor``).
"""
