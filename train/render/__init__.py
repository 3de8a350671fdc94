"""Rendering the head and writing what a prediction or a fit shows: the FLAME mesh
through the camera into a minirast image (:mod:`~train.render.head`, used by the data
generator, training and evaluation), and the files a prediction or a fit writes (an OBJ
mesh and an overlay on the photograph, :mod:`~train.render.writers`)."""
