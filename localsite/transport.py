"""The functions' DynamoDB client answered by moto in this process: no HTTP server, no socket.

``functions.dynamodb.Client`` signs each request and hands it to its transport. Here the transport gives the
signed request to the dispatcher moto's ``mock_aws`` puts in front of every in-process SDK call (its
``botocore_stubber``, which ``localsite.aws.local_aws`` runs under its lock), and returns moto's answer as
DynamoDB would send it. On the way it does what ``localsite.hooks`` does for boto3 clients: the before-send
listeners may answer first (fault injection: moto never sees the request), and after a successful write the
after-write listeners hear of it, before the answer goes back (the stream mapping wakes, the counts are saved).

``local_aws`` installs it (``functions.dynamodb.use_transport``) for every client built inside it.
"""

from __future__ import annotations

from collections.abc import Mapping

from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from moto.core.models import botocore_stubber

from localsite import hooks


def moto_transport(method: str, url: str, headers: Mapping[str, str], body: bytes
                   ) -> tuple[int, dict[str, str], bytes]:
    """One request of the functions' client, answered by a before-send listener or by moto."""
    operation = str(headers.get("x-amz-target", "")).rsplit(".", 1)[-1]
    sent = HTTPHeaders()
    for name, value in headers.items():
        sent[name] = value
    request = AWSPreparedRequest(method=method, url=url, headers=sent, body=body, stream_output=False)
    response = hooks.before_send(operation, request)
    if response is None:
        response = botocore_stubber(f"before-send.dynamodb.{operation}", request)
    if response is None:  # moto is not active (or not for this URL): as a refused connection
        raise ConnectionRefusedError(f"moto does not answer {url} here")
    content = response.content
    if response.status_code < 300 and operation in hooks.WRITE_OPERATIONS:
        hooks.notify_write(operation)
    return response.status_code, {name.lower(): value for name, value in response.headers.items()}, content
