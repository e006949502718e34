"""Shared pytest configuration."""

import os

# Tests call servers on loopback and start gateways whose outbound calls must go where each test
# says: proxy variables from the machine's environment would send them elsewhere (httpx and the
# SDKs read them too). The proxy tests set their own.
for _name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)
