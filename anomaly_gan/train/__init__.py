"""Training: objectives, the GAN loop, the encoder, monitoring and calibration."""
