"""Training: data caches, trainers and the `prepare-data` / `train` / `export` commands."""
