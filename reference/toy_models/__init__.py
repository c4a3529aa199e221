"""Closed-form models with an exact consistency function, for the notebooks and the tests.

- `gaussian_mixture`: a 1-D Gaussian mixture (notebook 1, Algorithm 1);
- `gaussian_images`: small colour images from a Gaussian prior (notebook 2, Algorithm 4);
- `golden_network`: the toy network the golden files were recorded with.
"""
