"""Results: ranking the best trials, the summary, final models with their cards and plots, and prediction."""
