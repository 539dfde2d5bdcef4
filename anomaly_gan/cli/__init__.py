"""The `anomaly-gan` command: one module per group of verbs, all registered on one typer app."""

from anomaly_gan.cli import data_commands  # noqa: F401  (registers the verbs)
from anomaly_gan.cli.app import app

__all__ = ["app"]
