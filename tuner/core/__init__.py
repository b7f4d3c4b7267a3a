"""The project's vocabulary: settings, errors, plain descriptions of models and trials.

Nothing here imports Keras or Optuna; every other folder builds on these.
"""
