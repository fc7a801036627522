"""Two app processes behind one Redis serve one conversation: what a user posts through
one process reaches a subscriber of the other, in order, typing, presence and the
recipient's notification nudge included.
Without Redis the second process would never hear of it (checked too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.e2e.conftest import _start_server, _stop
from tests.helpers import run_async
from tests.web.realtime.conftest import Client, Seeded, seed_server_data

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Seeded]]:
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    seeded = seed_server_data(tmp_path_factory.mktemp("redis-two"), XIETONG_REDIS_URL=REDIS_URL)
    first, first_url = _start_server(seeded.env, seeded.data_dir / "first.log")
    second, second_url = _start_server(seeded.env, seeded.data_dir / "second.log")
    try:
        yield first_url, second_url, seeded
    finally:
        _stop(first)
        _stop(second)


def _ws(url: str) -> str:
    return url.replace("http://", "ws://") + "/ws"


def test_a_message_posted_in_one_process_reaches_the_other(
    two_processes: tuple[str, str, Seeded],
) -> None:
    first_url, second_url, seeded = two_processes
    conversation = f"consultation:{seeded.consultation}"
    tokens = seeded.tokens

    async def run() -> None:
        expert = await Client.open(_ws(second_url), tokens["expert_a"])
        await expert.send(type="subscribe", conversation=conversation, id="s")
        subscribed = await expert.expect("subscribed")
        start = subscribed["last_seq"]
        applicant = await Client.open(_ws(first_url), tokens["applicant"])
        await applicant.send(type="subscribe", conversation=conversation, id="s")
        await applicant.expect("subscribed")
        # Presence crosses processes: the expert hears the applicant arrive.
        online = await expert.expect("presence")
        assert (online["state"], online["user_id"]) == ("online", seeded.user_ids["applicant"])
        # A second socket of the expert's, following nothing: only its own notifications.
        bell = await Client.open(_ws(second_url), tokens["expert_a"])
        await applicant.send(type="typing", conversation=conversation)
        typing = await expert.expect("typing")
        assert typing["user_id"] == seeded.user_ids["applicant"]
        for i in range(50):
            await applicant.send(
                type="post", conversation=conversation, text=f"跨进程 {i}", client_id=f"r{i}"
            )
        got = [(await expert.expect("message"))["message"] for _ in range(50)]
        assert [m["seq"] for m in got] == list(range(start + 1, start + 51))
        assert [m["text"] for m in got] == [f"跨进程 {i}" for i in range(50)]
        # The notification of the first message crossed too (the nudge; later ones are
        # deduplicated until the expert reads).
        nudge = await bell.expect("notification")
        assert nudge["kind"] == "consultation.message"
        await bell.close()
        # And back the other way.
        await expert.send(type="post", conversation=conversation, text="收到", client_id="back")
        back = await applicant.expect("message")
        while back["message"]["text"] != "收到":
            back = await applicant.expect("message")
        assert back["message"]["seq"] == start + 51
        await applicant.close()
        offline = await expert.expect("presence")
        assert offline["state"] == "offline"
        await expert.close()

    run_async(run)


def test_without_redis_a_second_process_does_not_hear(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The control: the same two processes with in-process fan-out deliver only to their
    own sockets (the subscriber of the other process sees the message only on resume)."""
    seeded = seed_server_data(tmp_path_factory.mktemp("no-redis"))
    first, first_url = _start_server(seeded.env, seeded.data_dir / "first.log")
    second, second_url = _start_server(seeded.env, seeded.data_dir / "second.log")
    conversation = f"consultation:{seeded.consultation}"

    async def run() -> None:
        expert = await Client.open(_ws(second_url), seeded.tokens["expert_a"])
        await expert.send(type="subscribe", conversation=conversation, id="s")
        start = (await expert.expect("subscribed"))["last_seq"]
        applicant = await Client.open(_ws(first_url), seeded.tokens["applicant"])
        await applicant.send(type="post", conversation=conversation, text="孤岛", client_id="x")
        await applicant.expect("posted")
        with pytest.raises(TimeoutError):
            await expert.expect("message", timeout=1.5)
        # Resuming from the last number seen finds it: nothing is lost, only late.
        await expert.send(type="subscribe", conversation=conversation, after=start)
        late = await expert.expect("message")
        assert late["message"]["text"] == "孤岛"
        await applicant.close()
        await expert.close()

    try:
        run_async(run)
    finally:
        _stop(first)
        _stop(second)
