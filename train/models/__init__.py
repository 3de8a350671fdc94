"""The networks (regressor, backbone, neural renderer, SMIRK's in ``smirk/``), the
interfaces they implement, and the face masking of the neural renderer's input."""
