"""HTTP routes, one module per resource."""

from receiver.routes.deliveries import list_deliveries, list_rejection_counts
from receiver.routes.jobs import get_job, list_job_events, list_jobs, track_job
from receiver.routes.ops import get_health, get_metrics, get_readiness
from receiver.routes.secrets import list_secrets
from receiver.routes.webhooks import receive_webhook

__all__ = ["ADMIN_ROUTES", "PUBLIC_ROUTES"]

PUBLIC_ROUTES = [receive_webhook, get_health, get_readiness]
ADMIN_ROUTES = [
    list_jobs,
    get_job,
    list_job_events,
    track_job,
    list_deliveries,
    list_rejection_counts,
    list_secrets,
    get_metrics,
]
