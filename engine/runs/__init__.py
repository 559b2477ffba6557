"""Executing and storing runs: events, the one executor, worker processes, the run store, devices, outcomes."""
