"""pullkeeper: private container-registry credentials and pull policy for Kubernetes."""

__version__ = "0.1.0"
