"""Pure functions from usage to cost (energy and carbon follow)."""
