"""The ``inferplane`` command (``main``) and its command groups, one module each: thin wrappers
that parse arguments, call the library and print."""
