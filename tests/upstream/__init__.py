"""A local stand-in for hosted model APIs (OpenAI, Azure OpenAI, Anthropic, Gemini).

It speaks each provider's wire format, answers deterministically (see ``echo``) and injects
faults on command (see ``faults``), so adapters and gateways are tested without a network.
Start it with ``python -m tests.upstream.server`` or ``tests.upstream.process.UpstreamProcess``.
"""
