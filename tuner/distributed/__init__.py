"""Distributed: workers that share one study and its budget, local worker processes, devices per worker."""
