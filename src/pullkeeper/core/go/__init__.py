"""Behaviours of Go's standard library that the kubelet and kubectl rely on.

pullkeeper predicts what the kubelet will do with a credential, so where the
kubelet leans on a Go library routine (URL parsing, filepath.Match, base64,
encoding/json) the same routine is reproduced here, edge cases included.
"""
