"""PerThreadTransport: each sending thread has a transport of its own, made once and reused;
closing it closes them all, and a thread that sends after that is told so."""

from __future__ import annotations

import threading

import httpx

from connector.hubspot.transport import PerThreadTransport


class Recording(httpx.BaseTransport):
    """Answers 200 and remembers which threads it served and whether it was closed."""

    def __init__(self) -> None:
        self.served: list[int] = []
        self.closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.served.append(threading.get_ident())
        return httpx.Response(200, json={"ok": True})

    def close(self) -> None:
        self.closed = True


def test_each_thread_sends_through_its_own_transport_made_once() -> None:
    made: list[Recording] = []

    def make() -> Recording:
        made.append(Recording())
        return made[-1]

    transport = PerThreadTransport(make)
    client = httpx.Client(transport=transport, base_url="https://api.hubapi.com")
    barrier = threading.Barrier(4)

    def send_twice() -> None:
        barrier.wait()  # all four threads exist at once: four different idents
        for _ in range(2):
            assert client.get("/x").status_code == 200

    threads = [threading.Thread(target=send_twice) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.get("/x").status_code == 200  # and this thread
    assert transport.threads == 5 == len(made)
    assert sorted(len(r.served) for r in made) == [1, 2, 2, 2, 2]
    assert all(len(set(r.served)) == 1 for r in made)  # one thread per transport

    client.close()
    assert all(r.closed for r in made)
    late: list[BaseException] = []

    def send_after_close() -> None:  # a thread that never sent before: it would make one
        try:
            transport.handle_request(httpx.Request("GET", "https://api.hubapi.com/x"))
        except BaseException as exc:
            late.append(exc)

    thread = threading.Thread(target=send_after_close)
    thread.start()
    thread.join()
    assert len(late) == 1 and isinstance(late[0], RuntimeError)
    assert "closed" in str(late[0])
    assert len(made) == 6 and made[-1].closed  # the one it made was closed at once
