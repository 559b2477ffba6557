"""dllab's benchmarks: every performance claim as a ratio measured side by side in one run.

``python -m bench [--quick] [--json]`` or ``dllab bench``; see docs/performance.md for the method
and the figures measured on the development machine.
"""
