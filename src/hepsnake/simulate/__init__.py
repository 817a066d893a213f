"""Toy CalRatio-like long-lived-particle sample with exact class likelihoods."""
