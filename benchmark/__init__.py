"""benchmark: train VAE-family models on spritegen data and score their disentanglement."""
