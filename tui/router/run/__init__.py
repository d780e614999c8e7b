"""A run: the session that holds a person's state, executing a routed/baseline pair over the
providers, the live figures of each side, and the LLM judge of the pair."""
