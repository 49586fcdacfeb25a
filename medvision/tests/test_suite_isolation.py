"""The test suite's own isolation (issue #11: a cascade of failures on a loaded machine).

These two tests run in file order: the first leaves a channel layer bound to its event
loop with a group member, the second must get a new one with nothing in it."""

import asyncio

from channels.layers import get_channel_layer

_seen = {}


def test_a_test_uses_the_channel_layer_in_its_own_event_loop():
    layer = get_channel_layer()
    _seen["layer"] = id(layer)

    async def use():
        await layer.group_add("isolation-check", "isolation-channel")
        await layer.send("isolation-channel", {"type": "left.over"})

    asyncio.run(use())


def test_the_next_test_gets_a_fresh_layer_with_nothing_left_over():
    layer = get_channel_layer()
    assert "layer" in _seen, "run with the test above (file order)"
    assert id(layer) != _seen["layer"]

    async def receive_nothing():
        try:
            return await asyncio.wait_for(layer.receive("isolation-channel"), timeout=0.3)
        except asyncio.TimeoutError:
            return None

    assert asyncio.run(receive_nothing()) is None
