"""The RouteDeck callback for LiteLLM Proxy: task-aware routing of ``routedeck/auto``.

``routedeck export litellm`` writes a small ``routedeck_callback.py`` beside the proxy's
config.yaml that builds one :class:`RouteDeckCallback`; LiteLLM loads it from
``litellm_settings.callbacks``. Its hooks:

- ``async_pre_call_hook``: a request for the virtual model is routed by
  :class:`tui.router.gateway.routing.Gateway` (same classifier and table as the TUI) and its ``model``
  rewritten to the cell's group, whose fallback LiteLLM's router holds; any other request is
  returned untouched. It never raises: a broken table or classifier fails open to the uncertain
  route.
- ``async_post_call_response_headers_hook``: the decision as ``x-routedeck-*`` response headers
  (task, priority, confidence, cell, model, fallback, uncertain, classifier).

This is the only module of RouteDeck that imports LiteLLM (``pip install "routedeck[litellm]"``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from tui.router.gateway.routing import INLINE_MAX_CHARS, VIRTUAL_MODEL, Gateway, decision_headers

__all__ = ["RouteDeckCallback"]


class RouteDeckCallback(CustomLogger):
    def __init__(
        self,
        routes_path: str | Path,
        model_path: str | Path | None,
        *,
        virtual_model: str = VIRTUAL_MODEL,
        fingerprint: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gateway = Gateway(Path(routes_path), None if model_path is None else Path(model_path),
                               virtual_model=virtual_model, fingerprint=fingerprint)
        # Once per worker, at start-up, so the first request pays nothing for it.
        self.gateway.load()

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: Any) -> dict:
        if not isinstance(data, dict) or not self.gateway.wants(data):
            return data
        messages = data.get("messages")
        size = sum(len(str(m)) for m in messages) if isinstance(messages, list) else 0
        if size > INLINE_MAX_CHARS:
            # A long prompt is classified off the event loop, so other requests keep flowing.
            await asyncio.to_thread(self.gateway.rewrite, data)
        else:
            self.gateway.rewrite(data)
        return data

    async def async_post_call_response_headers_hook(
        self, data: dict, user_api_key_dict: Any, response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        if not isinstance(data, dict):
            return None
        return decision_headers(data)
