"""Routing inside a gateway: RouteDeck's decision for an OpenAI-style request, and the
LiteLLM Proxy plug-in (the exported config and its callback)."""
