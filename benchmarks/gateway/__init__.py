"""Parts of the gateway-overhead benchmark (``benchmarks/bench_gateway.py``): the open-loop load
generator, the servers it compares, /proc readings and the report."""
