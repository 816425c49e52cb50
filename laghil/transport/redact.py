"""Masking of secrets (passwords, tokens) in anything laghil logs or reports.

A :class:`Redactor` holds secret strings; :meth:`Redactor.redact` replaces every
occurrence of any of them with ``***``. Secrets shorter than
:data:`MIN_SECRET_LEN` characters are refused: masking every ``a`` or ``42`` in
a log would destroy it while protecting nothing.

``SECRETS`` is the process-wide default registry; pass a Redactor explicitly
where a separate one is wanted (tests, several labs in one process).
"""

import re
import threading

MASK = "***"
MIN_SECRET_LEN = 3


class Redactor:
    """A thread-safe set of secrets and the function that masks them."""

    def __init__(self, secrets=()):
        self._lock = threading.Lock()
        self._secrets = set()
        self._pattern = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret):
        """Register ``secret``; return False (and ignore it) when it is None,
        not a string or shorter than MIN_SECRET_LEN characters."""
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LEN:
            return False
        with self._lock:
            if secret not in self._secrets:
                self._secrets.add(secret)
                # Longest first, so that a secret containing another is masked whole.
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return True

    def __contains__(self, secret):
        return secret in self._secrets

    def __len__(self):
        return len(self._secrets)

    def redact(self, text):
        """Return ``text`` with every registered secret replaced by ``***``.

        None and non-strings are returned unchanged (callers pass optional fields).
        """
        pattern = self._pattern
        if pattern is None or not isinstance(text, str) or not text:
            return text
        return pattern.sub(MASK, text)


SECRETS = Redactor()
"""Default process-wide registry used when no Redactor is passed."""
