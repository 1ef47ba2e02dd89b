"""Astronomer's Astro: the first implementation of the platform port."""
