"""pytest fixtures that start real peers and always stop them (see peers.py)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.peers import Gitdns, Named, Server, which

S = TypeVar("S", bound=Server)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (e.g. from `timeout`) interrupts like Ctrl-C, so fixture teardown still
    # stops the servers instead of leaving them running.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def require_named() -> None:
    # A peer test that cannot run its peer fails: skipping would hide the gap in CI.
    if which("named") is None:
        pytest.fail("BIND named is not installed: run scripts/setup.sh")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


class Servers:
    """Starts servers and stops every one of them at teardown, in reverse order."""

    def __init__(self) -> None:
        self.started: list[Server] = []

    def __call__(self, server: S) -> S:
        self.started.append(server)  # registered first: stopped even if start() raises
        server.start()
        return server

    def stop_all(self, show_logs: bool = False) -> None:
        for s in reversed(self.started):
            if show_logs:
                print(f"--- {s.name} {s.host}:{s.port} log tail ---\n{s.log_tail(80)}")
            s.stop()
        self.started.clear()


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    """``servers(Named({...}))`` starts a server stopped at the end of the test;
    on failure its log tail is printed in the teardown section."""
    s = Servers()
    try:
        yield s
    finally:
        s.stop_all(show_logs=request.node.stash.get(_FAILED, False))


@pytest.fixture(scope="module")
def module_servers() -> Iterator[Servers]:
    """Like ``servers`` but shared by a module's tests."""
    s = Servers()
    try:
        yield s
    finally:
        s.stop_all()


@pytest.fixture
def named(servers: Servers) -> Callable[..., Named]:
    """Factory: ``named({"example.": text}, keys=..., options=...)`` -> started Named."""
    require_named()
    return lambda *a, **kw: servers(Named(*a, **kw))


@pytest.fixture
def gitdns(servers: Servers) -> Callable[..., Gitdns]:
    """Factory: ``gitdns({"example": text}, args=[...])`` -> started Gitdns."""
    return lambda *a, **kw: servers(Gitdns(*a, **kw))
