"""The names of states and kinds the tables hold, in one place. Each is a `StrEnum`: a member
compares equal to the text stored in the database and encodes to it in JSON (`JobStatus.QUEUED
== "queued"`).

A job's status is text, not only a `JobStatus`: Aurous may report a status this code does not
know yet, and it is stored as it came (see the job tracker).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "NON_TERMINAL",
    "TERMINAL",
    "CostState",
    "DeliveryStatus",
    "DestinationState",
    "JobKind",
    "JobStatus",
    "LedgerType",
    "OutputState",
    "PushState",
    "RequestState",
    "Source",
]

JobStatus = StrEnum(
    "JobStatus",
    "PENDING QUEUED PROCESSING SUCCEEDED FAILED CANCELLED EXPIRED MODERATION_REJECTED",
)
NON_TERMINAL = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.PROCESSING)
TERMINAL = frozenset(set(JobStatus) - set(NON_TERMINAL))

JobKind = StrEnum("JobKind", "IMAGE VIDEO UNKNOWN")

# Where news of a job came from; a job event names the webhook's event: `webhook:evt_…`.
Source = StrEnum("Source", "WEBHOOK POLL SWEEP API")

# What the job's cost is: held while it runs, charged once it ended.
CostState = StrEnum("CostState", "HELD CHARGED")

# An output is pending until archived; lost when it expired or was refused before its bytes
# were kept; none when Aurous says there is nothing to download.
OutputState = StrEnum("OutputState", "PENDING ARCHIVED LOST NONE")

# A webhook request: processed (new, stored and applied), a duplicate of one stored before,
# quarantined (genuinely signed but not understood), or rejected (not trusted).
DeliveryStatus = StrEnum("DeliveryStatus", "PROCESSED DUPLICATE QUARANTINED REJECTED")

# A create request sent through the receiver: sending until Aurous's answer is recorded.
RequestState = StrEnum("RequestState", "SENDING CREATED FAILED")

# A credit movement in Aurous's ledger.
LedgerType = StrEnum("LedgerType", "HOLD RELEASE CHARGE REFUND TOPUP ADJUSTMENT")

# A destination of the customer's app: disabled by an operator, or after failing too long.
DestinationState = StrEnum("DestinationState", "ENABLED DISABLED")

# One event's push to one destination: pending until delivered, failed after the schedule.
PushState = StrEnum("PushState", "PENDING DELIVERED FAILED")
