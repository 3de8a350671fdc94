"""train: synthetic face data and the SMIRK-style regressor fine-tuned with the rho camera.

A stack of parts, bottom first (docs/design.md section 6): ``units`` and ``metrics``;
``faces/`` photographs, detection, crops and landmark files; ``render/`` the head
through the camera and the files a prediction writes; ``data/`` synthetic and real
data, caching and batches; ``models/`` the networks and masking (SMIRK's in
``models/smirk/``); ``engine/`` configuration, the training system and the run loop;
``fit/`` FLAME and the camera fitted to landmarks; ``infer/`` a checkpoint on photos
and footage; ``eval/`` the evaluation and its report. The commands ``python -m
train.pretrain|finetune|evaluate|landmarks|import_smirk`` are the modules here;
``train.fit``, ``train.infer`` and ``train.data`` are their parts' ``__main__``.
"""
