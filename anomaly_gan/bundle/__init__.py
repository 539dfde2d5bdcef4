"""Model bundles: what a trained model is on disk (format, calibration record) and loading it."""
