"""Root conftest. laghil's pytest plugin loads through its entry point
(``pytest_laghil``, the files in ``fixtures/``); nothing is listed here."""
