"""A read of a landing object that breaks off is transient, never a bad file (issue 17).

The bucket is reached through a TCP relay to the moto server (``relay_support.ResettingRelay``) that
resets the connection (RST) once it has passed 2 MiB of an answer, the way a dropped connection or a
load balancer's reset looks to the client; then the relay stops listening, so nothing answers at all.
Both reads end in core/source_file.TransientReadError naming the object, which the crawl and curation
do not catch as an unreadable file (they catch SourceReadError): the table's step fails transiently and
is retried instead of the file being quarantined until it changes. (Killing moto itself does not break
a read: the kernel still delivers what moto had written, and moto writes a whole answer at once.)
"""

from __future__ import annotations

import pytest

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
from sf_platform_tests.relay_support import ResettingRelay, moto_address, relayed_bucket

pytestmark = pytest.mark.integration

KEY = "events/EVENTS_202509011200.csv"
CUT_BYTES = 2 << 20


@pytest.fixture()
def relayed(stack_env, landing):
    relay = ResettingRelay(moto_address(stack_env), cut_bytes=CUT_BYTES)
    try:
        yield relay, relayed_bucket(stack_env, landing.bucket, relay)
    finally:
        relay.close()


def test_a_read_that_breaks_off_midway_is_transient_and_names_the_object(relayed, landing):
    relay, bucket = relayed
    rows = 120_000  # ~5 MiB
    landing.put(KEY, b"id,name,note\n" + b"".join(b"%d,name %d,a note of some forty bytes\n" % (i, i) for i in range(rows)))
    columns = [TargetColumn("id", "bigint"), TargetColumn("name", "string"), TargetColumn("note", "string")]

    relay.armed = True
    read = 0
    with pytest.raises(TransientReadError) as broken:  # read as curation reads
        body = open_source(bucket, KEY)
        head = read_head(body)  # the reset may come here already: the client reads slower than the relay
        layout = read_layout(head, parse_registry({"tables": {"events": {}}}).table("events"), key=KEY)
        for batch in numbered_batches(PrefixedStream(head, body), layout, columns, key=KEY):
            read += batch.rows
    assert relay.resets == 1 and read < rows  # the GET had answered 2 MiB when it was reset
    assert not isinstance(broken.value, SourceReadError)  # what curation quarantines as unreadable
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
