"""Fake OpenAI-compatible servers on loopback, for the tests and the benchmarks.

They fake only the HTTP boundary: :mod:`tests.fakes.openai_server` is a fast,
deterministic model (multiple-choice letters, judge scores) for the evaluation;
:mod:`tests.fakes.fault_server` produces on cue the faults a real model server produces
by accident. Nothing here ships in the package.
"""
