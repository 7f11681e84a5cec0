"""The rivals a reviewer names beside NoProp, each one module behind the one method interface: DiffusionBlocks
(``diffusion_blocks``) and decoupled greedy learning (``dgl``). As the paper and authors' code define them
(``docs/rivals.md``), built on NoProp's parts in ``noprop.core`` so each is matched to its twin."""
