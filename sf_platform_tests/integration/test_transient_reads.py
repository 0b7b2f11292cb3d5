"""A read of a landing object that breaks off is transient, never a bad file (issue 17).

The bucket is reached through a TCP relay to the moto server that resets the connection (RST) once it
has passed 2 MiB of an answer, the way a dropped connection or a load balancer's reset looks to the
client; then the relay stops listening, so nothing answers at all. Both reads end in
core/source_file.TransientReadError naming the object, which the loaders do not catch as an unreadable
file (they catch SourceReadError): the table's step fails transiently and is retried instead of the
file being quarantined until it changes. (Killing moto itself does not break a read: the kernel still
delivers what moto had written, and moto writes a whole answer at once.)
"""

from __future__ import annotations

import socket
import struct
import threading
from urllib.parse import urlparse

import pytest
from dagster_aws.s3 import S3Resource

from sf_platform.core import transient
from sf_platform.core.conversion import TargetColumn
from sf_platform.core.registry import parse_registry
from sf_platform.core.source_file import (
    PrefixedStream,
    SourceReadError,
    TransientReadError,
    numbered_batches,
    open_source,
    read_head,
    read_layout,
)
from sf_platform.resources.aws import LandingBucket

pytestmark = pytest.mark.integration

KEY = "events/EVENTS_202509011200.csv"
CUT_BYTES = 2 << 20


class _ResettingRelay:
    """127.0.0.1:<port> -> the moto server; once ``armed``, a connection that has passed ``CUT_BYTES``
    of answers since is reset."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.armed, self.resets = target, False, 0
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

    def _pump(self, source: socket.socket, dest: socket.socket, answers: bool) -> None:
        passed = 0
        try:
            while chunk := source.recv(1 << 16):
                passed = passed + len(chunk) if self.armed and answers else 0
                if passed > CUT_BYTES:
                    # Closing with a zero linger sends RST; the other pump's recv on the same socket
                    # would keep it open, so wake that one first (SHUT_RD sends nothing to the client).
                    dest.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    dest.shutdown(socket.SHUT_RD)
                    self.resets += 1
                    break
                dest.sendall(chunk)
        except OSError:
            pass
        for sock in (source, dest):
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture()
def relayed(stack_env, landing):
    moto = urlparse(stack_env["SF_AWS_ENDPOINT_URL"])
    relay = _ResettingRelay((moto.hostname, moto.port))
    s3 = S3Resource(region_name=stack_env["SF_AWS_REGION"], endpoint_url=f"http://127.0.0.1:{relay.port}",
                    aws_access_key_id=stack_env["SF_AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=stack_env["SF_AWS_SECRET_ACCESS_KEY"], max_attempts=2)
    try:
        yield relay, LandingBucket(s3=s3, bucket=landing.bucket)
    finally:
        relay.close()


def test_a_read_that_breaks_off_midway_is_transient_and_names_the_object(relayed, landing):
    relay, bucket = relayed
    rows = 120_000  # ~5 MiB
    landing.put(KEY, b"id,name,note\n" + b"".join(b"%d,name %d,a note of some forty bytes\n" % (i, i) for i in range(rows)))
    columns = [TargetColumn("id", "bigint"), TargetColumn("name", "string"), TargetColumn("note", "string")]

    relay.armed = True
    read = 0
    with pytest.raises(TransientReadError) as broken:  # read as the loaders read
        body = open_source(bucket, KEY)
        head = read_head(body)  # the reset may come here already: the client reads slower than the relay
        layout = read_layout(head, parse_registry({"tables": {"events": {}}}).table("events"), key=KEY)
        for batch in numbered_batches(PrefixedStream(head, body), layout, columns, key=KEY):
            read += batch.rows
    assert relay.resets == 1 and read < rows  # the GET had answered 2 MiB when it was reset
    assert not isinstance(broken.value, SourceReadError)  # what the loaders quarantine as unreadable
    assert broken.value.key == KEY
    assert str(broken.value).startswith(f"{KEY}: the read broke off (transient, retried): ")
    assert transient.classify_text(f"TransientReadError: {broken.value}").transient

    # A GET while nothing answers: transient too, with the object's s3:// name (resources/aws.py).
    relay.close()
    with pytest.raises(TransientReadError) as refused:
        open_source(bucket, KEY)
    assert refused.value.reason.startswith(
        f"EndpointConnectionError: s3://{landing.bucket}/{KEY}: Could not connect to the endpoint URL"
    )
