"""The Python API: `tune` (the command line's run, from a notebook) and `CNNClassifier` (a scikit-learn estimator)."""
