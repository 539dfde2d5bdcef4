"""Images, plots, metrics and HTML reports."""
