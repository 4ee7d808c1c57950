"""Evaluation and prediction with saved checkpoints, as ordinary jobs ``(config, sink, cancel)``."""
