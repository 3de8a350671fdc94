"""Training: the run configuration, the training system and its losses, the run
loop with its checkpoints, log, validation and plots, devices and DDP, and the
pretrain / fine-tune recipe."""
