"""Environments in another process or machine: a small binary protocol, a server and a client.

See docs/remote_envs.md for the message format, so a game in another language can serve it.
"""

from dreamlab.envs.remote.client import RemoteEnv
from dreamlab.envs.remote.server import EnvServer

__all__ = ["EnvServer", "RemoteEnv"]
