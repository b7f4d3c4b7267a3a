"""Budget runs: `tuner run STUDY --budget 1h` plans and runs calibration, search, final training and export in that time."""
