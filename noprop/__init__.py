"""The methods, in wings that do not import each other; depends on torch only, never on the harness.

- ``noprop.core``: what every method shares (the method protocol and its declaration, settings, label embeddings,
  the paper's block, denoiser stacks, one-network training, dropout). ``baselines`` and plug-ins import this.
- ``noprop.dt``: NoProp-DT (Li, Teh, Pascanu 2025): schedule, the model, grouped blocks, block-parallel shards.
- ``noprop.continuous``: NoProp-CT and NoProp-FM: the one network, the learned schedule, ODE integrators.
"""
