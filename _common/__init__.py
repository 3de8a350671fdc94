"""Infrastructure every package of the project shares, owned by none of them.

- :mod:`_common.checks`: validation of tensors that come from outside, with
  errors that say what was wrong and what was expected;
- :mod:`_common.backend`: the ``"auto" | "torch" | "triton"`` backend choice of
  every kernel (ppcam, minirast);
- :mod:`_common.atomic`: atomic file writes (a crash never leaves a half-written
  file behind);
- :mod:`_common.codegen`: compile configurations of Triton kernels whose signatures
  are derived from the kernels, for the GPU code-generation checks.

``ppcam``, ``minirast``, ``flame``, ``train`` and ``bench`` import from here; this
package imports none of them.
"""
