"""HTTP routes, one module per resource."""

from receiver.web.routes.deliveries import list_deliveries, list_rejection_counts
from receiver.web.routes.destinations import (
    create_destination,
    get_destination,
    list_destinations,
    list_push_attempts,
    remove_destination,
    replay_to_destination,
    rotate_destination_secret,
    update_destination,
)
from receiver.web.routes.events import list_events, replay_one_event, stream_events
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
from receiver.web.routes.outputs import follow_link, get_output
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

PUBLIC_ROUTES = [receive_webhook, get_health, get_readiness, follow_link]
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
    create_destination,
    list_destinations,
    get_destination,
    update_destination,
    remove_destination,
    list_push_attempts,
    rotate_destination_secret,
    replay_to_destination,
    list_events,
    stream_events,
    replay_one_event,
]
