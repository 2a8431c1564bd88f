"""Talking to container registries: the OCI distribution API, its auth and TLS."""
