"""What nodes are told about registries (a node profile: CAs, insecure hosts, mirrors,
logins) and the files each container runtime and the kubelet read it from, rendered
exactly; pure: writing them is node/'s work."""
