"""Datasets: each draws training batches on the training device with the global torch RNG."""
