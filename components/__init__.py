"""Pulumi component resources of tag-counter, one per module, composed by ``__main__.py``."""
