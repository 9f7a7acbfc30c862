"""Benchmarks of seedrun against plain shell, GNU make, GNU parallel, doit and Node.js.

Run ``python -m bench --help`` for the options and bench/README.md for what
each figure means.
"""
