"""Notifications: the AIDeployments' transitions delivered to the notifiers' sinks."""
