"""A job for the abandoned-job test: notes each run (its process id) in a file, and sleeps the first time."""
import os
import time
from pathlib import Path


def note_run_and_sleep(path: str, seconds: float) -> int:
    runs = Path(path)
    with runs.open("a") as handle:
        handle.write(f"{os.getpid()}\n")
    if len(runs.read_text().split()) == 1:
        time.sleep(seconds)  # the first run is killed while here
    return len(runs.read_text().split())
