"""The incident service: alert events in, deduplicated incidents, routed webhook notifications out (faust-streaming)."""
