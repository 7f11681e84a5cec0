"""NoProp-DT (paper Sec. 2.2): T blocks, each trained on its own as a denoiser of the noised label embedding."""
