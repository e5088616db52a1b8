"""``python -m admin``: the operator command (``./dev admin``)."""

from admin.cli import main

main()
