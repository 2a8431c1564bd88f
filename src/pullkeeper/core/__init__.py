"""Pure rules, no I/O: references, docker config, the keyring, pull policy, admission, egress."""
