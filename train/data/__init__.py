"""Training data: the synthetic regimes with ground truth, the real-image folder
loader, safetensors shards, the per-run cache and the stateless batch order."""
