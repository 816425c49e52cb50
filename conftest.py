"""Root conftest: loads laghil's pytest plugin (options, fixtures, hooks, reporter)."""

pytest_plugins = ["fixtures.plugin", "fixtures.fixtures", "fixtures.reporter", "fixtures.measure",
                  "fixtures.lag", "fixtures.roce"]
