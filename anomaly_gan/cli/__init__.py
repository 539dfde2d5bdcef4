"""The `anomaly-gan` command: one module per group of verbs, all registered on one typer app."""

from anomaly_gan.cli import (  # noqa: F401  (importing registers the verbs)
    data_commands,
    detect_command,
    line_commands,
    report_commands,
    train_command,
)
from anomaly_gan.cli.app import app

__all__ = ["app"]
