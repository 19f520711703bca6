"""Provider adapters: one per upstream protocol, behind the contract in ``base.py``."""
