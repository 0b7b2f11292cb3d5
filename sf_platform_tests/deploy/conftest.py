"""The deploy tests: the production deployment's processes on loopback (`make test-deploy`)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deploy: starts the production deployment's processes (make test-deploy; not in make test)"
    )
