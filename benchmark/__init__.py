"""benchmark: VAE-family models, training, disentanglement metrics, sweeps and reports."""
