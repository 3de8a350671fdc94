"""train: synthetic face data and the SMIRK-style regressor fine-tuned with the rho camera."""
