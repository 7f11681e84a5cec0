"""What every method shares: the method protocol and its declaration, settings, label embeddings, the paper's
block and denoiser stacks, one-network training, dropout. The other wings, ``baselines`` and plug-ins import it;
it imports none of them."""
