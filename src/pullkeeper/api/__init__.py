"""The REST API face (`/api/v1`), plus health and metrics."""
