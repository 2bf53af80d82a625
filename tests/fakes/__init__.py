"""The fake OpenAI-compatible server of the tests and the benchmarks, on loopback.

It fakes only the HTTP boundary: :mod:`tests.fakes.openai_server` is the one fake (chat,
models and embeddings; the request's model name picks an answer or a fault), built from
:mod:`tests.fakes.wire` (what it says), :mod:`tests.fakes.embeddings` (its vectors) and
:mod:`tests.fakes.loopback` (uvicorn on 127.0.0.1, which also serves the gateway under
test). Nothing here ships in the package.
"""
