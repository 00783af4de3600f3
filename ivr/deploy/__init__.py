"""Packaging the product as container images (docker/, docs/containers.md)."""
