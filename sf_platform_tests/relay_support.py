"""A TCP relay in front of the moto server that resets connections mid-answer, for tests of reads that
break off (issue 17): a real reset (RST) reaching the real S3 client, as a dropped connection or a load
balancer's reset looks to it. The approach of ``integration/test_transient_reads.py``, with the cut and
the number of resets as parameters (a step's retry must find the relay passing again).
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from urllib.parse import urlparse

from dagster_aws.s3 import S3Resource

from sf_platform.resources.aws import LandingBucket

_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(GET|PUT|POST|DELETE|HEAD) (/\S*) HTTP/1\.1\r\n")


class ResettingRelay:
    """127.0.0.1:<port> -> ``target``; while ``armed``, a connection that has passed ``cut_bytes`` of
    answers (or ``cut_request_bytes`` of requests: an upload breaking off) since is reset, at most
    ``max_resets`` times (None: always). ``requests`` lists the (method, path) of the requests it
    passed, in order (what the client did, e.g. uploads and deletes)."""

    def __init__(self, target: tuple[str, int], *, cut_bytes: int | None = 2 << 20,
                 cut_request_bytes: int | None = None, max_resets: int | None = None):
        self.target, self.max_resets = target, max_resets
        self.cut_bytes, self.cut_request_bytes = cut_bytes, cut_request_bytes
        self.armed, self.resets = False, 0
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone leaves it listening)
        except OSError:
            pass
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _reset_now(self) -> bool:
        with self._lock:
            if self.max_resets is not None and self.resets >= self.max_resets:
                return False
            self.resets += 1
            return True

    def _pump(self, source: socket.socket, dest: socket.socket, answers: bool) -> None:
        passed = 0
        client = dest if answers else source
        try:
            while chunk := source.recv(1 << 16):
                if not answers:
                    self.requests += [(m.decode(), p.decode()) for m, p in _REQUEST_LINE.findall(chunk)]
                limit = self.cut_bytes if answers else self.cut_request_bytes
                passed = passed + len(chunk) if self.armed and limit is not None else 0
                if limit is not None and passed > limit and self._reset_now():
                    # Closing the client's socket with a zero linger sends RST; the other pump's recv
                    # (on dest) would keep it open, so wake that one first (SHUT_RD sends nothing).
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    dest.shutdown(socket.SHUT_RD)
                    break
                dest.sendall(chunk)
        except OSError:
            pass
        for sock in (source, dest):
            try:
                sock.close()
            except OSError:
                pass


def relayed_bucket(stack_env: dict[str, str], bucket: str, relay: ResettingRelay) -> LandingBucket:
    """The landing bucket reached through ``relay`` (two attempts per call, as botocore would retry a
    reset before an answer; a body broken off mid-read is never retried by botocore)."""
    s3 = S3Resource(region_name=stack_env["SF_AWS_REGION"], endpoint_url=f"http://127.0.0.1:{relay.port}",
                    aws_access_key_id=stack_env["SF_AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=stack_env["SF_AWS_SECRET_ACCESS_KEY"], max_attempts=2)
    return LandingBucket(s3=s3, bucket=bucket)


def moto_address(stack_env: dict[str, str]) -> tuple[str, int]:
    moto = urlparse(stack_env["SF_AWS_ENDPOINT_URL"])
    return moto.hostname, moto.port
