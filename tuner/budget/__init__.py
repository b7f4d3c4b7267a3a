"""The time-budget strategy: `--budget 1h` plans calibration, search, final training and export within it."""
