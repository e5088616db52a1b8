"""The operator command of tag-counter (``./dev admin``): set, reset, delete, import, export and reconcile counts.

It lives outside ``functions/``: it runs on the operator's machine with the operator's credentials and is not
part of the Lambda code archive (``definition.CODE_DIRECTORIES``).
"""
