"""How the ``grounded`` mode makes the verified knowledge change the answer.

``prompting`` builds the request for a technique (prefill, two-pass, structured output,
few-shot, or instruct: the plain prompt); ``output`` turns the upstream's reply back into
answer plus knowledge block (whole or streamed); ``fallback`` re-sends the prompt-only
request when an upstream refuses what a technique needs. See BENCHMARKS.md ("Grounding
effect") for what each one achieved.
"""
