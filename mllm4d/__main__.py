"""``python -m mllm4d run --profile tiny``: see mllm4d/runner.py."""
import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
