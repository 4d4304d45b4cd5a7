"""Publishing case events to integrators: CloudEvents, the feed, the live tail, webhooks."""
