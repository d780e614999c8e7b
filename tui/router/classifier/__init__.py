"""The classifier: a prompt in, a task type with its confidence and runner-up out.

features (prompt → tokens), classify (the model, its training, cache and the classifier
kinds: rules, local, LLM, cascade), rules (routes.toml's regexes), evaluate (scoring on
labelled prompts), corrections (a fixed label becomes an example), cost (what the LLM
classifier costs).
"""
