from __future__ import annotations

import pytest

from server.domain.push.hosts import UnsafeHost, check_allow_local, is_public_address
from server.push.hosts import HostGuard


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.169.254", "172.16.0.1", "192.168.1.1",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.251", "239.255.255.250", "240.0.0.1",
                                     "::1", "fe80::1", "fc00::1", "ff02::1", "::", "::ffff:10.0.0.1",
                                     "::ffff:127.0.0.1", "2002:0a00:0001::1"])
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["142.250.72.10", "8.8.8.8", "2a00:1450:4001:800::200a"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


async def test_guard_refuses_private_hosts_unless_allow_local() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return {"push.example": ["142.250.72.10"], "rebind.example": ["142.250.72.10", "10.0.0.5"],
                "meta.example": ["169.254.169.254"]}[host]

    guard = HostGuard(resolve=resolve)
    await guard.check_url("https://push.example/send/1")
    for url in ("https://10.0.0.1/x", "https://127.0.0.1:8443/x", "https://169.254.169.254/latest",
                "https://[::1]/x", "https://224.0.0.1/x", "https://[ff02::1]/x", "https://localhost/x",
                "https://rebind.example/x", "https://meta.example/x"):
        with pytest.raises(UnsafeHost):
            await guard.check_url(url)
    with pytest.raises(UnsafeHost, match="https"):
        await guard.check_url("http://push.example/x")
    local = HostGuard(allow_local=True, resolve=resolve)
    await local.check_url("http://127.0.0.1:8000/push/x")
    await local.check_url("https://10.0.0.1/x")


async def test_resolution_failure_and_cache() -> None:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host == "gone.example":
            raise OSError("no such host")
        return ["142.250.72.10"]

    now = [0.0]
    guard = HostGuard(resolve=resolve, cache_seconds=60, clock=lambda: now[0])
    with pytest.raises(UnsafeHost, match="does not resolve"):
        await guard.check_url("https://gone.example/x")
    await guard.check_url("https://push.example/a")
    await guard.check_url("https://push.example/b")
    assert calls.count("push.example") == 1
    now[0] = 61
    await guard.check_url("https://push.example/c")
    assert calls.count("push.example") == 2


def test_allow_local_is_refused_in_production() -> None:
    check_allow_local(True, False)
    check_allow_local(False, True)
    with pytest.raises(ValueError, match="production"):
        check_allow_local(True, True)
    with pytest.raises(ValueError):
        HostGuard(allow_local=True, production=True)
