"""Progress lines on stderr while a run goes on (the results go to stdout)."""

import sys
import time


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
