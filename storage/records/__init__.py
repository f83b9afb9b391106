"""What crosses the storage boundary: typed records out of the gateway, typed rows and changes
into it. No SQLAlchemy row or loose dict leaves `storage/`.

`…Record` is a stored row as the gateway reads it; `New…` is a row to insert; `…Update` is a
change in which a field left `UNSET` is not written. A record's fields are in the order the
gateway selects its columns, so it is built from a row positionally (`Record(*row)`).
A record carries the columns its readers use: the lease columns (`lease_owner`,
`lease_expires_at`) stay inside the gateway's claim and fenced-finish statements.
"""

from storage.records import base, jobs, relay, spend, webhooks
from storage.records.base import *  # noqa: F403
from storage.records.jobs import *  # noqa: F403
from storage.records.relay import *  # noqa: F403
from storage.records.spend import *  # noqa: F403
from storage.records.webhooks import *  # noqa: F403

# Each module names its own records; this package offers them all under one name.
__all__ = []
__all__ += base.__all__
__all__ += jobs.__all__
__all__ += relay.__all__
__all__ += spend.__all__
__all__ += webhooks.__all__
