"""GCR and ACR token exchanges with the real SDKs, against stand-ins of Google and Azure."""
