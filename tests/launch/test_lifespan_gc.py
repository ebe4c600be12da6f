"""The app's lifespan keeps startup objects out of GC passes while it serves, and lets go at shutdown."""

from __future__ import annotations

import gc

from chatstream.app import create_app
from chatstream.settings import Settings


async def test_startup_heap_is_frozen_while_serving_and_released_at_shutdown() -> None:
    app = create_app(Settings(use_mock_response=True, history="memory"))
    async with app.router.lifespan_context(app):
        # everything alive at startup (modules, routes, the engine) is in the permanent generation
        assert gc.get_freeze_count() > 10_000
        assert not any(obj is app for obj in gc.get_objects())  # frozen objects are not tracked
    assert gc.get_freeze_count() == 0
    assert any(obj is app for obj in gc.get_objects())
