"""Code that runs inside AWS Lambda: route handlers, the stream processor and what they share.

Nothing here imports pulumi; the stream processor never imports Jinja2.
"""
