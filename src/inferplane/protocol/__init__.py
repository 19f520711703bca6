"""The canonical types every layer speaks (``types``): requests, messages, tools, usage, the
stream events a provider yields, and the ``UsageSink`` it reports an early-closed stream's usage to.
"""
