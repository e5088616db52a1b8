"""Code that runs inside AWS Lambda: route handlers, the stream processor and what they share.

Nothing here imports pulumi; the stream processor never imports Jinja2. Each handler module builds what every
request needs at import, in Lambda's init phase (the DynamoDB client, its templates compiled), and imports
nothing a request does not need: neither boto3 nor botocore (the client is ``functions.dynamodb``).
"""
