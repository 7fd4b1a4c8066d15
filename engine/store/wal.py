"""The store's data directory: lock, format stamp, write-ahead log, snapshot.

The directory holds

    FORMAT                 "konverge-store <n>"; a newer <n> is refused
    LOCK                   flock'ed by the one process that has the store open
    snapshot               one framed record: "<first wal seq>\\n" + state
    wal-<seq>.log          framed records, replayed in seq order after the snapshot

A framed record is `<u32 length><u32 crc32>` followed by `length` payload
bytes; the CRC covers the length field too, so a corrupted length is caught.
This module knows nothing of what records mean: the store encodes them.

Why segments: a snapshot is written to a new file and renamed into place, and
only then are the segments it covers deleted, so a crash at any step leaves
either the old snapshot plus every segment after it, or the new one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
import zlib

from engine.store.base import StoreCorrupted, StoreFormatError, StoreLocked, StoreWriteFailed

FORMAT_VERSION = 1
_FORMAT_NAME = "konverge-store"
_HEADER = struct.Struct("<II")
_LENGTH = struct.Struct("<I")
_WAL_RE = re.compile(r"^wal-(\d{16})\.log$")
_MAX_RECORD = 1 << 30  # larger lengths can only come from damage


def frame(payload: bytes) -> bytes:
    length = _LENGTH.pack(len(payload))
    return length + _LENGTH.pack(zlib.crc32(payload, zlib.crc32(length))) + payload


def _record_at(data: bytes | memoryview, offset: int) -> int | None:
    """The end offset of a valid record at `offset`, or None."""
    if offset + _HEADER.size > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, offset)
    end = offset + _HEADER.size + length
    if length == 0 or length > _MAX_RECORD or end > len(data):
        return None
    payload = data[offset + _HEADER.size : end]
    if zlib.crc32(payload, zlib.crc32(_LENGTH.pack(length))) != crc:
        return None
    return end


def read_records(path: str) -> tuple[list[tuple[int, bytes]], int]:
    """Every valid record of a log as (offset, payload), and where they end.

    An invalid record with no valid record after it is a torn tail (a write
    that was never acknowledged) and ends the log; one with a valid record
    after it means acknowledged data was damaged, which is refused.
    """
    with open(path, "rb") as f:
        data = f.read()
    view = memoryview(data)
    records: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        end = _record_at(view, offset)
        if end is None:
            for later in range(offset + 1, len(data) - _HEADER.size):
                if _record_at(view, later) is not None:
                    raise StoreCorrupted(path, offset, "a damaged record is followed by valid ones")
            break
        records.append((offset, data[offset + _HEADER.size : end]))
        offset = end
    return records, offset


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _wal_name(seq: int) -> str:
    return f"wal-{seq:016d}.log"


class DataDir:
    """An open, locked data directory and the log segment being appended to."""

    def __init__(self, path: str, *, read_only: bool = False):
        """`read_only`: for a reader beside a possible writer (`konverge get`):
        the directory must exist, no lock is taken, and nothing is created,
        truncated or deleted."""
        self.path = os.path.abspath(path)
        self.read_only = read_only
        self._lock_fd = -1
        self._wal_fd = -1
        self._failed: str | None = None
        self.seq = 0
        if read_only:
            if not os.path.isdir(self.path):
                raise StoreFormatError(f"there is no store data directory at {self.path}", file=self.path)
            _check_format(self.path, create=False)
            return
        os.makedirs(self.path, exist_ok=True)
        self._lock_fd = _lock(self.path)
        try:
            _check_format(self.path)
        except BaseException:
            os.close(self._lock_fd)
            raise

    # --- recovery --------------------------------------------------------------

    def load(self) -> tuple[bytes | None, list[tuple[str, int, bytes]]]:
        """The snapshot's state (or None) and the log records after it, as
        (file, offset, payload); truncates a torn tail and opens the log.

        Read-only, it changes nothing; a writer's snapshot can remove a
        segment while it is being read, so the read is retried."""
        if self.read_only:
            for attempt in range(5):
                try:
                    return self._load()
                except FileNotFoundError:
                    if attempt == 4:
                        raise StoreCorrupted(self.path, None, "the log kept changing while it was read") from None
        return self._load()

    def _load(self) -> tuple[bytes | None, list[tuple[str, int, bytes]]]:
        snapshot_path = os.path.join(self.path, "snapshot")
        state = None
        first = 0
        if os.path.exists(snapshot_path):
            records, end = read_records(snapshot_path)
            if len(records) != 1 or end != os.path.getsize(snapshot_path):
                raise StoreCorrupted(snapshot_path, end, "the snapshot file is damaged")
            head, _, state = records[0][1].partition(b"\n")
            if not head.isdigit():
                raise StoreCorrupted(snapshot_path, 0, "the snapshot header is unreadable")
            first = int(head)
        segments = sorted(
            int(m.group(1)) for name in os.listdir(self.path) if (m := _WAL_RE.match(name))
        )
        if self.read_only and segments and [s for s in segments if s >= first] != list(range(first, segments[-1] + 1)):
            # A writer cut the log between reading the snapshot and listing
            # the directory: segments the old snapshot needs are gone.
            raise FileNotFoundError(self.path)
        out: list[tuple[str, int, bytes]] = []
        for seq in segments:
            seg_path = os.path.join(self.path, _wal_name(seq))
            if seq < first:
                if not self.read_only:
                    os.unlink(seg_path)  # covered by the snapshot; a crash stopped its removal
                continue
            records, end = read_records(seg_path)
            if end != os.path.getsize(seg_path) and not self.read_only:
                with open(seg_path, "r+b") as f:
                    f.truncate(end)
                    os.fsync(f.fileno())
            out.extend((seg_path, offset, payload) for offset, payload in records)
        live = [s for s in segments if s >= first]
        self.seq = live[-1] if live else first
        if not self.read_only:
            self._open_wal(self.seq, create=not live)
        return state, out

    # --- writing ---------------------------------------------------------------

    def append(self, payloads: list[bytes]) -> None:
        """Append records and fsync them once: the group commit."""
        if self.read_only:
            raise StoreWriteFailed(f"the store in {self.path} is open read-only; the write was not applied")
        if self._failed:
            raise StoreWriteFailed(
                f"writes to {self.path} are refused since an earlier write failed ({self._failed}); "
                "close and reopen the store"
            )
        start = os.lseek(self._wal_fd, 0, os.SEEK_END)
        try:
            _write_all(self._wal_fd, b"".join(map(frame, payloads)))
        except OSError as e:
            self._undo_append(start)
            raise _write_failed(self._wal_path(), e) from None
        try:
            os.fdatasync(self._wal_fd)
        except OSError as e:
            # After a failed fsync the kernel may have dropped the dirty pages
            # and a retry can falsely succeed, so no further write is trusted.
            self._failed = f"fsync: {e.strerror or e}"
            self._undo_append(start)
            raise _write_failed(self._wal_path(), e) from None

    def _undo_append(self, start: int) -> None:
        # Leave no partial record behind: a later record after it would make
        # recovery see a damaged record in the middle of the log.
        try:
            os.ftruncate(self._wal_fd, start)
            os.fdatasync(self._wal_fd)
        except OSError as e:
            self._failed = f"truncate after a failed write: {e.strerror or e}"

    def write_snapshot(self, state: bytes) -> None:
        """Persist `state` as the snapshot covering every record so far, then
        drop the segments it covers."""
        if self.read_only:
            raise StoreWriteFailed(f"the store in {self.path} is open read-only; no snapshot was written")
        if self._failed:
            raise StoreWriteFailed(f"snapshot of {self.path} refused since an earlier write failed ({self._failed})")
        new_seq = self.seq + 1
        new_path = os.path.join(self.path, _wal_name(new_seq))
        snapshot_path = os.path.join(self.path, "snapshot")
        tmp = snapshot_path + ".tmp"
        try:
            os.close(os.open(new_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, frame(b"%d\n" % new_seq + state))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, snapshot_path)
        except OSError as e:
            for leftover in (new_path, tmp):
                try:
                    os.unlink(leftover)
                except OSError:
                    pass
            raise _write_failed(snapshot_path, e) from None
        # The new snapshot is visible now and names the new segment as the
        # first to replay, so every later record must go there.
        old_seq = self.seq
        os.close(self._wal_fd)
        self._open_wal(new_seq, create=False)
        try:
            fsync_dir(self.path)
        except OSError as e:
            # The old segments stay: with them, either snapshot replays right.
            self._failed = f"fsync of {self.path}: {e.strerror or e}"
            raise _write_failed(self.path, e) from None
        for seq in range(old_seq, new_seq):
            try:
                os.unlink(os.path.join(self.path, _wal_name(seq)))
            except FileNotFoundError:
                pass
        # Not fsynced: a segment that reappears after a crash is older than
        # the snapshot and is deleted again on open.

    def _open_wal(self, seq: int, create: bool) -> None:
        flags = os.O_WRONLY | (os.O_CREAT if create else 0)
        self._wal_fd = os.open(os.path.join(self.path, _wal_name(seq)), flags, 0o644)
        self.seq = seq
        if create:
            fsync_dir(self.path)

    def _wal_path(self) -> str:
        return os.path.join(self.path, _wal_name(self.seq))

    def close(self) -> None:
        for fd in (self._wal_fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._wal_fd = self._lock_fd = -1


def _write_failed(path: str, e: OSError) -> StoreWriteFailed:
    reason = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return StoreWriteFailed(f"could not write to {path}: {reason}; the write was not applied", file=path)


def _lock(path: str) -> int:
    lock_path = os.path.join(path, "LOCK")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StoreLocked(
            f"data directory {path} is in use by another store (process {holder} holds {lock_path}); "
            "stop it or use another directory",
            file=lock_path,
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _check_format(path: str, create: bool = True) -> None:
    format_path = os.path.join(path, "FORMAT")
    try:
        with open(format_path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if any(_WAL_RE.match(n) or n == "snapshot" for n in os.listdir(path)):
            raise StoreFormatError(
                f"{path} holds store data but no FORMAT file; it was not written by Konverge or is damaged",
                file=format_path,
            ) from None
        if not create:
            raise StoreFormatError(f"{path} is not a Konverge store data directory (it has no FORMAT file)",
                                   file=format_path) from None
        write_atomic(format_path, f"{_FORMAT_NAME} {FORMAT_VERSION}\n".encode())
        return
    name, _, version = text.strip().partition(" ")
    if name != _FORMAT_NAME or not version.isdigit():
        raise StoreFormatError(f"{format_path} is not a Konverge store format stamp: {text.strip()!r}", file=format_path)
    if int(version) > FORMAT_VERSION:
        raise StoreFormatError(
            f"{path} was written by store format {version}, newer than the format {FORMAT_VERSION} "
            "this Konverge reads; upgrade Konverge to open it",
            file=format_path,
        )
