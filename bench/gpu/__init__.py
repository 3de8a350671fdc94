"""``python -m bench.gpu``: one command that measures every GPU claim of the project.

The stages (each a child process with its own time-out, so a hang loses only that
stage; :mod:`bench.gpu.run` schedules them, :mod:`bench.gpu.stage` runs one):

- ``env``: GPU, driver, torch, triton, CUDA, and a measured device-to-device copy
  bandwidth (:mod:`bench.gpu.env`);
- ``cuda-tests``: the ``cuda``-marked tests (real kernels against their torch
  backends at sizes the interpreter cannot reach);
- ``determinism``: bitwise repeatability of every Triton backward at full size
  (:mod:`bench.gpu.determinism`);
- ``projection``, ``raster``: ``bench.projection`` and ``bench.raster``;
- ``nvdiffrast``: nvdiffrast's CUDA rasterizer on the same job, built from the
  source given with ``--nvdiffrast PATH`` (:mod:`bench.gpu.nvdiffrast_peer`);
- ``train``: training throughput of the ``full`` preset with and without bfloat16
  autocast, and the rendering share of a step (:mod:`bench.gpu.throughput`);
- ``photo-fit``: ``train.fit.fit_images`` on one capture of 64 frames at 512 px
  (:func:`bench.photo_fit.time_capture`);
- ``ncu``: Nsight Compute on one launch of each Triton kernel (:mod:`bench.gpu.ncu`);
- ``suite``: the rest of the test suite on the GPU.

Everything lands in ``<out>/<device-name>/`` with a ``summary.md`` that puts each
measured figure beside its target (:mod:`bench.gpu.targets`) and a ``summary.png``
(:mod:`bench.gpu.plots`). ``--dry-run`` runs
every stage at tiny sizes on the CPU (Triton in its interpreter). See bench/GPU.md.
"""
