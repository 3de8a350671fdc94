"""The model section of a run's configuration: which networks are built (architecture,
widths), the camera the regressor predicts, and the neural renderer's input masking.
The FLAME basis sizes and the image size belong to the data section."""

from __future__ import annotations

import dataclasses

from train.models._validate import MASKINGS
from train.models.regressor import CAMERA_MODES, RHO_INITS
from train.options import check_options, option

#: Regressor and neural-renderer architectures: "small" (this project's compact
#: MobileNet-like encoders and UNet, for CPUs) or "smirk" (SMIRK's released encoder and
#: generator, train.models.smirk; its checkpoint converts with train.import_smirk)
ARCHS = ("small", "smirk")


@dataclasses.dataclass
class ModelConfig:
    """The networks of a run."""

    arch: str = option(
        "small",
        "networks: 'small' (compact encoders and UNet, for CPUs) or 'smirk' "
        "(SMIRK's encoder and generator; image size a multiple of 16)",
        choices=ARCHS,
    )
    camera: str = option(
        "pseudo",
        "camera the regressor predicts: 'ortho' (rho = 0), 'pseudo' (the paper's "
        "rho) or 'perspective' (focal length and distance)",
        choices=CAMERA_MODES,
    )
    rho_max: float = option(
        6.0, "upper end of the rho head's sigmoid", unit="1 / model unit", positive=True
    )
    rho_init: str = option(
        "zero",
        "init of the rho head: 'zero' (rho near 0) or 'paper' (about rho_max / 2)",
        choices=RHO_INITS,
    )
    width: float = option(0.5, "channel multiplier of the 'small' encoders", positive=True)
    renderer_channels: int = option(
        8, "channels of the neural renderer's first level (SMIRK's: 32)", positive=True
    )
    masking: str = option(
        "paper",
        "masking of the renderer's input: 'paper' (never copies contour or nose "
        "pixels back) or 'smirk'",
        choices=MASKINGS,
    )

    def validate(self) -> ModelConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        check_options(self)
        return self
