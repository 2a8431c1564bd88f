"""The Helm chart and the image definition in deploy/."""
