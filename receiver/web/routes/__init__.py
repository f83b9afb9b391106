"""HTTP routes, one module per resource."""

from receiver.web.routes.deliveries import list_deliveries, list_rejection_counts
from receiver.web.routes.jobs import (
    create_image_job,
    create_video_job,
    get_job,
    list_job_events,
    list_jobs,
    refresh_job,
    track_job,
)
from receiver.web.routes.ops import get_health, get_metrics, get_readiness
from receiver.web.routes.outputs import get_output
from receiver.web.routes.secrets import list_secrets
from receiver.web.routes.spend import (
    export_spend_csv,
    get_spend_balance,
    get_spend_summary,
    list_findings,
    list_ledger,
    run_audit,
)
from receiver.web.routes.webhooks import receive_webhook

__all__ = ["ADMIN_ROUTES", "PUBLIC_ROUTES"]

PUBLIC_ROUTES = [receive_webhook, get_health, get_readiness]
ADMIN_ROUTES = [
    list_jobs,
    get_job,
    list_job_events,
    track_job,
    create_image_job,
    create_video_job,
    refresh_job,
    get_output,
    list_deliveries,
    list_rejection_counts,
    list_secrets,
    get_metrics,
    get_spend_summary,
    get_spend_balance,
    list_ledger,
    list_findings,
    export_spend_csv,
    run_audit,
]
