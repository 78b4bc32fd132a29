"""Child process of :class:`bench.project.Worker`: set Django up, then serve calls.

Reads one JSON request per line on stdin (``{"call": "module:function",
"kwargs": {...}}``) and answers one JSON line on stdout. Anything the code
under test prints goes to stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import sys
import traceback
from importlib import import_module


def main() -> None:
    """Serve requests until stdin closes."""
    protocol = sys.stdout
    sys.stdout = sys.stderr

    def answer(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        import django

        django.setup()
    except Exception:
        answer({"error": traceback.format_exc()})
        return
    answer({"result": None})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            module_name, _, function_name = request["call"].partition(":")
            function = getattr(import_module(module_name), function_name)
            answer({"result": function(**request.get("kwargs", {}))})
        except Exception:
            answer({"error": traceback.format_exc()})


if __name__ == "__main__":
    main()
