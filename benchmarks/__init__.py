"""Benchmarks of jaxrl against peer libraries; `python -m benchmarks.run` runs the registered suites.

Kept import-light on purpose: peer workers (e.g. rejax's, in a venv of its own with another
gymnax) import `benchmarks.ppo_speed` for its timing helper and must not pull in jaxrl or envs.
"""
