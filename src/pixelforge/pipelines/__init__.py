"""Per-family Python entry points (train a model, load it back, use it)."""
