"""Hyperparameter studies: Optuna trials as train jobs, the best trial as a model config."""
