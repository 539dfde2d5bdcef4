"""The networks: DCGAN generator, critic and encoder."""
