"""Chunked HDF5 → tensor loading for training and prediction."""
