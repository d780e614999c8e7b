"""Providers: the wire protocols (OpenAI-compatible, Anthropic), a labelled simulation, and
the registry that turns a model id into a ready client.

``http.py`` is the protocol-neutral streaming call (deadlines, errors, retry-after, the shared
httpx client) and the stream skeleton both HTTP protocols use; ``sse.py`` frames the event
stream; ``openai_compat.py`` and ``anthropic.py`` only build their request body and read their
own events."""
