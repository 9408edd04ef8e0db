"""Soft Actor-Critic (Haarnoja et al. 2018) for Box action spaces."""
