"""Providers: the wire protocols (OpenAI-compatible, Anthropic), a labelled simulation, and
the registry that turns a model id into a ready client."""
