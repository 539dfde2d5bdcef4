"""Detection: latent inversion, scoring and calibration, and the batch pipeline."""
