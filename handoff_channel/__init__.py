"""Human handoff for Rasa 3.6: a gateway that owns the visitor sockets, the agent inbox and the
conversation status, and a Rasa input channel (``handoff_channel.rasa_channel.HandoffInput``) that
runs bot turns for it. See docs/architecture.md.

This module stays import-light on purpose: Rasa imports it when it reads credentials.yml, and the
action server imports ``handoff_channel.summary`` from it."""

__version__ = "0.1.0"
