"""Bundled instrument policies, shipped with the compiler (see README.md here)."""
