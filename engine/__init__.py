"""Pure workflow semantics: definitions, templates, expressions, nodes, the interpreter.

Nothing in this package talks to Redis, Ray or HTTP clients of the ingress; the
actors layer feeds it events and persists what it reports.
"""
