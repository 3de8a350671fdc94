"""Inference on photographs and footage with a trained checkpoint (``python -m
train.infer``): per face the FLAME parameters and the camera as JSON, an overlay and
the mesh; one tracked face through a video or a folder of frames."""
