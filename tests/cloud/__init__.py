"""Cloud token exchanges with the real SDKs (boto3, google-auth, azure-identity), against
stand-ins of AWS, Google and Azure on loopback."""
