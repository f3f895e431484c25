"""Garbage-collector tuning for a long-lived server process, shared by the gateway and our Rasa
channel (which runs inside ``rasa run``). Import-light: Rasa imports it with credentials.yml."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Take everything alive now out of the collector's sight and make the older generations'
    collections ten times rarer; returns how many objects were frozen.

    Call it once the process has loaded what it keeps for its whole life. A full collection then
    walks only what was allocated since, instead of every module, model and socket object: those
    walks stalled the process for 50-500 ms. Frozen objects are still freed by reference counting;
    only cycles among them are never looked for again.

    The middle generation is collected ten times less often (every 100 young collections, not 10)
    and full collections as rarely as before (every 10 middle ones, not 100), so a full collection
    still comes once per 1,000 young ones. With hundreds of open sockets, what survives a young
    collection is mostly their waiting tasks, futures and timers (a socket waits on a timeout
    for every packet); each middle collection walked some 20,000 of them, stalling the gateway
    10-40 ms every ~3 s at 500 conversations, which set forwarding's p99. Young garbage is still
    collected as often as before."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, max(middle, MIDDLE_EVERY), max(old, FULL_EVERY))
    return gc.get_freeze_count()


# Young collections between two collections of the middle generation, and middle collections
# between two full ones (Python's defaults: 10 and 10).
MIDDLE_EVERY = 100
FULL_EVERY = 10
