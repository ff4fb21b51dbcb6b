"""Training: the trainer loop and what it is made of (history, checkpoints, probe scheduling, fast path)."""
