"""Applications built on the model families (generative data augmentation, ...)."""
