"""Search: the objective that adapts the harness to Optuna trials, pruning, study set-up, and the run loop."""
