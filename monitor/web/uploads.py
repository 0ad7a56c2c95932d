"""An upload streamed from a multipart body into a temporary file under a name the server chooses.

Only the part named ``file`` is kept; its bytes go to disk as they arrive and the upload is refused (413) as
soon as it passes the size limit. After the limit the rest of the body is read and discarded (up to a bound)
so the client gets the answer instead of a reset connection. The caller deletes the file when done
(:meth:`Upload.discard`); on any error here it is deleted before the exception leaves.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header

FIELD = "file"
DRAIN_FACTOR = 4  # after the limit, read at most this many times the limit before giving up on the body


class UploadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    path: str  # the temporary file
    name: str  # the client's file name: only ever shown, never used as a path
    size: int

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def client_name(raw: bytes | None) -> str:
    """The base name of what the client called the file (for rows and messages only)."""
    name = (raw or b"").decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in name if ch.isprintable()).strip() or "upload"


@dataclass
class _State:
    folder: str
    limit: int
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytes = b""
    header_value: bytes = b""
    in_file: bool = False
    file: IO[bytes] | None = None
    path: str = ""
    name: str = ""
    size: int = 0
    too_big: bool = False

    def on_part_begin(self) -> None:
        self.headers, self.header_field, self.header_value = {}, b"", b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.in_file = params.get(b"name") == FIELD.encode() and self.file is None and not self.path
        if self.in_file:
            fd, self.path = tempfile.mkstemp(prefix="upload-", dir=self.folder)
            self.file = os.fdopen(fd, "wb")
            self.name = client_name(params.get(b"filename"))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.in_file or self.too_big:
            return
        self.size += end - start
        if self.size > self.limit:
            self.too_big = True
            self.close()
            return
        assert self.file is not None
        self.file.write(data[start:end])

    def on_part_end(self) -> None:
        if self.in_file:
            self.close()
        self.in_file = False

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def remove(self) -> None:
        self.close()
        if self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


async def receive_upload(
    content_type: str, content_length: str | None, body: AsyncIterator[bytes], folder: str, limit: int
) -> Upload:
    """Stream the ``file`` part of a multipart body to a temporary file in ``folder``; raises UploadError."""
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(415, "send the audio as multipart/form-data with a field named 'file'")
    too_big = UploadError(413, f"the file is larger than the server's limit of {_mb(limit)} ([web] max_upload_mb)")
    if content_length and content_length.isdigit() and int(content_length) > DRAIN_FACTOR * limit:
        raise too_big
    st = _State(folder, limit)
    parser = MultipartParser(params[b"boundary"], {  # type: ignore[arg-type]
        "on_part_begin": st.on_part_begin, "on_part_data": st.on_part_data, "on_part_end": st.on_part_end,
        "on_header_field": st.on_header_field, "on_header_value": st.on_header_value,
        "on_header_end": st.on_header_end, "on_headers_finished": st.on_headers_finished,
    })
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if st.too_big and received > DRAIN_FACTOR * limit:
                break
            parser.write(chunk)
        if st.too_big:
            raise too_big
        parser.finalize()
    except UploadError:
        st.remove()
        raise
    except Exception as exc:  # a malformed body, or the client went away
        st.remove()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UploadError(400, f"the upload could not be read ({reason})") from None
    if not st.path:
        raise UploadError(400, f"no file in the upload: send it in a multipart field named '{FIELD}'")
    st.close()
    if st.size == 0:
        st.remove()
        raise UploadError(422, f"{st.name}: the file is empty")
    return Upload(st.path, st.name, st.size)
