"""Code the tests share: launchers as subprocesses, stand-ins, receivers, the exporter's golden page."""
