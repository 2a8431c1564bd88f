"""Adapters for container hosts: files and programs found on a node or workstation."""
