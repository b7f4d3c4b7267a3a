"""The trial-count strategy: N trials of the K-fold harness with Optuna's sampler and pruner (tuner.count.strategy)."""
