"""SMIRK's released networks and checkpoint (Retsinas et al. 2024, github
georgeretsi/smirk, MIT), rebuilt in plain torch so its checkpoints load strictly:

- :mod:`~train.models.smirk.mobilenetv3`: the "minimal" MobileNetV3 backbones of its
  encoders;
- :mod:`~train.models.smirk.networks`: its encoder and generator;
- :mod:`~train.models.smirk.adapter`: both behind the project's regressor and renderer
  interfaces (``arch="smirk"``);
- :mod:`~train.models.smirk.release`: reading its released checkpoint safely and
  checking the FLAME model it needs.

``python -m train.import_smirk`` converts a released checkpoint into a training
checkpoint of this project (docs/smirk.md).
"""
