"""Conversation affinity end to end: real nginx in front of chatstream replicas sharing PostgreSQL."""
