"""Code that runs inside AWS Lambda: route handlers, the stream processor and what they share.

Nothing here imports pulumi; the stream processor never imports Jinja2. Each handler module builds what every
request needs at import, in Lambda's init phase (the DynamoDB client, its templates compiled), and imports
nothing a request does not need.
"""

import sys

# botocore imports awscrt whenever it is installed (for SigV4a and S3's CRT transfers; DynamoDB uses neither):
# about 50 ms of CPU per cold start, measured. Every function module is imported through this package, so this
# keeps it out whatever the runtime or a layer carries (botocore then runs without it, as when it is missing).
sys.modules.setdefault("awscrt", None)  # type: ignore[arg-type]
