"""Refuse every network connection that leaves this machine.

Put this folder on ``PYTHONPATH`` and every Python process started with it
(papermill's kernels, Dask workers) imports it at start-up: a connection to an
address other than loopback or a local socket raises ``OSError`` naming the
address, which proves that nothing downloads.
"""

import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _check(address):
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return
    host = address[0]
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        if host in ("localhost",):
            return
    raise OSError(f"network access blocked in tests: attempted connection to {address!r}")


def _guarded_connect(self, address):
    _check(address)
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex
