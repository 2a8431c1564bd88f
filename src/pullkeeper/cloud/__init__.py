"""Cloud identities exchanged for registry tokens: ECR (boto3), GCR and Artifact Registry
(google-auth), ACR (azure-identity and the registry's /oauth2/exchange).

Each exchange imports its SDK when it runs: the server and the CLI start without them.
"""
