"""Fitting FLAME and the rho camera to 68 landmarks (MAP, batched L-BFGS)."""

from train.fit.fitting import CAMERAS, RHO_STARTS, FitPrior, FitResult, fit_landmarks

__all__ = ["CAMERAS", "RHO_STARTS", "FitPrior", "FitResult", "fit_landmarks"]
