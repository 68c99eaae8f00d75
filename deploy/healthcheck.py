"""The image's HEALTHCHECK (deploy/Dockerfile, issue #20).

One image runs workers and the API. When the container's process is `streamsense serve`,
the API must answer ``GET /healthz`` on its port; any other command (a worker has no port)
is healthy while its process lives, which the engine sees anyway. Kubernetes ignores this
and probes /healthz and /readyz itself (deploy/k8s/api.yaml).
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

DEFAULT_PORT = 8000  # `streamsense serve --port`'s default (tests/deploy checks it)
ANY_INTERFACE = {"0.0.0.0", "::", ""}


def health_url(argv: list[str]) -> str | None:
    """The /healthz URL of the API this command line serves, or None if it serves none."""
    if "serve" not in argv:
        return None
    host, port = "127.0.0.1", DEFAULT_PORT
    for i, arg in enumerate(argv):
        name, _, value = arg.partition("=")
        if not value and i + 1 < len(argv):
            value = argv[i + 1]
        if name == "--port":
            port = int(value)
        elif name == "--host" and value not in ANY_INTERFACE:
            host = value
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main() -> int:
    argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    url = health_url(argv)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return 0 if reply.status == 200 else 1
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
