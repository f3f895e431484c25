"""Custom actions of the Northwind Shop assistant (run with ``rasa run actions --actions actions``
from ``bot/``, with the repository root on ``PYTHONPATH`` so that ``handoff_channel.summary``
imports).

* ``orders``  -- ``action_order_status``: answers from the ``order_number`` slot or asks for it.
* ``handoff`` -- ``action_handoff`` / ``action_handback``: step aside for a person, and come back;
  when nobody is there, ``offline_ticket_form`` (validated by ``validate_offline_ticket_form``) and
  ``action_submit_ticket`` leave a message for the team instead.

Actions never touch a database or the network: the hand-off travels to the channel as a custom
payload, and the hand-back report arrives as entities of the external intent ``handoff_done``.
"""
