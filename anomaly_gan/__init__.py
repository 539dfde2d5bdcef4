"""anomaly-gan: find defects in RGB-D scans with a DCGAN trained on good parts only."""

__version__ = "0.1.0"
