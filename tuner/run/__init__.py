"""The run pipeline: every way of running a study (one process, local workers, a remote worker) goes through it."""
