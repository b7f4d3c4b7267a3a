"""Training: ModelSpec -> Keras model, the K-fold harness, and one training of the model a person keeps.

Only Keras here: no Optuna, no storage. The harness reports through a plain
callable, so tests and benchmarks drive it without a study.
"""
