"""train: synthetic face data and the SMIRK-style regressor fine-tuned with the rho camera.

By role: ``data/`` synthetic and real data, caching and batches; ``models/`` the
networks, masking and rendering; ``engine/`` configuration, the training system
and the run loop; ``eval/`` metrics, evaluation, the report and inference. The
commands ``python -m train.pretrain|finetune|evaluate|infer`` are the thin modules
here; ``python -m train.data build|preview`` renders data.
"""
