"""One run at a time per lab: an flock held for the whole session.

Two runs on the same rack would pull each other's cables; instead of killing
other runs (`pkill pytest`), the second run stops with the holder's pid.
"""

import fcntl
import os
from pathlib import Path

from .errors import LaghilError
from .paths import state_root


class LabBusy(LaghilError):
    pass


class LabLock:
    def __init__(self, lab_name):
        self.path = state_root() / "locks" / f"{lab_name}.lock"
        self.lab_name = lab_name
        self._fd = None

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Path(self.path).read_text().strip() or "?"
            os.close(fd)
            raise LabBusy(f"lab {self.lab_name!r} is in use by another run (pid {holder}, "
                          f"lock {self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()
