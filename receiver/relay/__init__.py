"""The hand-over to the customer's app: the outbox's events pushed to destinations (signed,
retried, in order per job), pulled as a feed or a live stream, and replayed on demand."""
