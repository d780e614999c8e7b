"""The classifier: a prompt in, a task type with its confidence and runner-up out.

words (a prompt's words, folded), split (a prompt into instruction and pasted material),
features (prompt → tokens), model (the trained model as arrays, numpy inference), training
(fitting it with scikit-learn), cache (trained models on disk), local (the local classifier,
the rules in front of it, an LRU), llm (the LLM classifier and the cascade), build (the stack
the routing table asks for), rules (routes.toml's regexes), evaluate (scoring on labelled
prompts), corrections (a fixed label becomes an example), cost (what the LLM classifier costs).
The decision taken from a classification is tui.router.table.decide's.
"""
