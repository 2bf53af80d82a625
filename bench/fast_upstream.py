"""The fast upstream of the overhead benchmarks: the one fake OpenAI server
(``tests/fakes/openai_server.py``) answering every model at once with a fixed text, as one
JSON body or, when ``"stream": true``, as server-sent events (role, the whole text in one
delta, finish, ``[DONE]``). It keeps no request bodies, so its cost per request is the
same whatever the gateway sent.

    .venv/bin/python bench/fast_upstream.py --port 8011
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.fakes
from tests.fakes.openai_server import main  # noqa: E402

if __name__ == "__main__":
    main(["--default", "fixed", "--pieces", "whole", "--no-record", "--model", "fast-upstream",
          *sys.argv[1:]])
