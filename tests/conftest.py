"""Settings every test shares: no real AWS credentials can ever be used, and moto's quirks are tamed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Set before any boto3 client exists, so nothing can reach a real account.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Recent botocore addresses Streams by account endpoints moto does not recognise.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
)
os.environ.pop("AWS_PROFILE", None)


def _share_botocore_loader() -> None:
    """One botocore data loader for every client the tests make.

    Each botocore session builds its own loader, which parses the service model and endpoint rules JSON again
    (DynamoDB's: about 0.1 s of CPU a client). The tests make several clients per test (the store's, boto3's,
    the local site's), so they shared nothing and spent about a third of the suite's time in ``json.loads``.
    The loader only reads files and memoizes what it read, which is what boto3's default session already
    shares between its clients; sharing it across sessions changes no client's behaviour.
    """
    import functools

    import botocore.loaders
    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


_share_botocore_loader()
