"""A fake Kubernetes API server for tests: the real REST wire protocol over an in-memory store.

`FakeApiServer` (fake_apiserver.py) is the entry point; the other modules each hold one rule
of the real server: resources.py the served kinds and discovery, selectors.py label and field
selectors, patching.py the three patch formats, validation.py the 422/400 checks,
defaults.py what the real server fills in, store.py objects, resourceVersions and the watch
history, simulator.py a tiny controller and kubelet for Deployments.
"""
