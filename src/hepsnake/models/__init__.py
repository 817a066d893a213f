"""Taggers assembled from config: input norm, init nets, encoder, pooling, heads."""
