import hashlib
import os
from pathlib import Path

import pytest

from xietong.core.errors import NotFound, PayloadTooLarge
from xietong.core.storage import LocalBlobStore


def test_put_is_content_addressed_and_checksummed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    ref = store.put_bytes(b"scan page 1")
    assert ref.sha256 == hashlib.sha256(b"scan page 1").hexdigest()
    assert ref.key == f"{ref.sha256[:2]}/{ref.sha256[2:4]}/{ref.sha256}"
    with store.open(ref.key) as handle:
        assert handle.read() == b"scan page 1"
    assert store.verify(ref.key)


def test_same_content_is_stored_once_and_never_overwritten(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    first = store.put_bytes(b"x" * 10)
    path = tmp_path / first.key
    mtime = path.stat().st_mtime_ns
    second = store.put([b"x" * 5, b"x" * 5])
    assert second == first
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "ab/cd/../../x", "/etc/passwd", "ab/cd/" + "g" * 64, "", "ab/cd"],
)
def test_keys_cannot_leave_the_root(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(NotFound):
        store.open(key)


def test_oversized_put_leaves_nothing_behind(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(PayloadTooLarge):
        store.put([b"a" * 600, b"a" * 600], max_bytes=1000)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_tampered_blob_fails_verification(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    ref = store.put_bytes(b"original")
    target = tmp_path / ref.key
    os.chmod(target, 0o644)
    target.write_bytes(b"tampered")
    assert not store.verify(ref.key)
