"""The sampling engine: the PyMC model of a fit, compiled once and sampled with NUTS."""
