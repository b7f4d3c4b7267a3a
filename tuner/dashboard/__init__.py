"""What optuna-dashboard shows: notes on studies and trials, and the server. The only importer of optuna_dashboard."""
