"""What crosses the storage boundary: typed records out of the gateway, typed rows and changes
into it. No SQLAlchemy row or loose dict leaves `storage/`.

`…Record` is a stored row as the gateway reads it; `New…` is a row to insert; `…Update` is a
change in which a field left `UNSET` is not written. A record's fields are in the order the
gateway selects its columns, so it is built from a row positionally (`Record(*row)`).
"""

from storage.records.base import (
    UNSET,
    Change,
    Record,
    Slice,
    UnsetType,
    changed_fields,
    values_of,
)
from storage.records.jobs import (
    ArchivedBlob,
    AtRiskOutput,
    JobEventRecord,
    JobRecord,
    JobRequestRecord,
    JobRequestUpdate,
    JobUpdate,
    NewJob,
    NewJobEvent,
    NewJobRequest,
    NewOutput,
    OutputCounts,
    OutputFinish,
    OutputRecord,
    PollClaim,
)
from storage.records.spend import (
    BalanceSnapshotRecord,
    FindingRecord,
    FindingUpdate,
    JobMoney,
    JobSpend,
    LedgerEntryRecord,
    NewBalanceSnapshot,
    NewFinding,
    NewLedgerEntry,
    RepeatedRequest,
    SpendGroup,
)
from storage.records.webhooks import (
    DeliveryRecord,
    NewDelivery,
    NewSecret,
    RejectionCountRecord,
    SecretRecord,
)

__all__ = [
    "UNSET",
    "ArchivedBlob",
    "AtRiskOutput",
    "BalanceSnapshotRecord",
    "Change",
    "DeliveryRecord",
    "FindingRecord",
    "FindingUpdate",
    "JobEventRecord",
    "JobMoney",
    "JobRecord",
    "JobRequestRecord",
    "JobRequestUpdate",
    "JobSpend",
    "JobUpdate",
    "LedgerEntryRecord",
    "NewBalanceSnapshot",
    "NewDelivery",
    "NewFinding",
    "NewJob",
    "NewJobEvent",
    "NewJobRequest",
    "NewLedgerEntry",
    "NewOutput",
    "NewSecret",
    "OutputCounts",
    "OutputFinish",
    "OutputRecord",
    "PollClaim",
    "Record",
    "RejectionCountRecord",
    "RepeatedRequest",
    "SecretRecord",
    "Slice",
    "SpendGroup",
    "UnsetType",
    "changed_fields",
    "values_of",
]
