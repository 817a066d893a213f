"""Predictions, metrics (ROC, rejection, K-S) and plots."""
