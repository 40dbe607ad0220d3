"""Backends that run trained networks elsewhere (Lava, Brian2). Only the rate engine trains."""
