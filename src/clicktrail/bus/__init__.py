"""Message bus: Kafka in production, an in-process queue in the embedded runtime."""
