"""Fitting FLAME and the rho camera to 68 landmarks (MAP, batched L-BFGS), and to the
photos themselves through minirast (:func:`fit_images`)."""

from train.fit.fitting import CAMERAS, RHO_STARTS, FitPrior, FitResult, better_of, fit_landmarks
from train.fit.photometric import PhotoFitResult, fit_images

__all__ = [
    "better_of",
    "CAMERAS",
    "RHO_STARTS",
    "FitPrior",
    "FitResult",
    "PhotoFitResult",
    "fit_images",
    "fit_landmarks",
]
