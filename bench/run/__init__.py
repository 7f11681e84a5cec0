"""One run: config, data, fast-path switches, measurement, the run recipe and its checkpoints."""
