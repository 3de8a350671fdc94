"""``python -m bench.gpu``: see :mod:`bench.gpu` and bench/GPU.md."""

import sys

from bench.gpu.run import main

sys.exit(main())
