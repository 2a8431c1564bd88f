"""Real registries (distribution 2.8), a token server and a fault proxy, for client tests."""
