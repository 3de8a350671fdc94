"""The networks (regressor, backbone, neural renderer), the face masking of the
neural renderer's input, and the rendering helpers over minirast and ppcam."""
