"""Stage layer: the `cvd` command line, one module per DVC stage, config, I/O and MLflow tracking."""
