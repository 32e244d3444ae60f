"""The benchmark: models, training, metrics, sweeps and reports on spritegen and standard datasets."""
