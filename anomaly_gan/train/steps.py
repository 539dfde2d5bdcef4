"""Each objective's default number of GAN steps, by name: plain values, so that `train --help` and
TrainConfig name the objectives and their lengths without loading torch (the objectives
themselves, in train.objectives, read their length from here)."""

# Generator updates that fit the 15-minute CPU budget for 375 scans (benchmarks/detect_kinect.py).
DEFAULT_STEPS = {
    "gan": 1500,
    "lsgan": 1500,
    "wgan-clip": 700,
    "wgan-gp": 600,  # each step is 5 critic steps with a double backward: about 1 s on 2 cores
}
