"""The item codec, held to the record's one field list (core/connection.py's FIELDS)."""

import dataclasses

from realtime.core.connection import FIELDS
from realtime.registry.dynamodb.codec import ATTRIBUTES, from_item, to_item
from realtime.registry.dynamodb.schema import SCOPE_KEY, TTL_ATTRIBUTE
from tests.records import conn


def test_every_field_of_the_record_has_its_attribute_and_nothing_else_is_written():
    item = to_item(conn("c1"))
    assert set(ATTRIBUTES) == set(FIELDS)
    assert set(item) == set(ATTRIBUTES.values()) | {SCOPE_KEY}
    assert ATTRIBUTES["expires_at"] == TTL_ATTRIBUTE and item[TTL_ATTRIBUTE].keys() == {"N"}


def test_an_item_reads_back_as_the_record_it_was_written_from():
    record = conn("c1", tenant="beta", deployment_id="d-2", connection_type="worker")
    assert from_item(to_item(record)) == record
    # Every field takes part: change any one and the item changes.
    for field in dataclasses.fields(record):
        other = dataclasses.replace(
            record, **{field.name: 1 if field.name == "expires_at" else "x"}
        )
        assert to_item(other) != to_item(record), field.name


def test_the_tenant_index_sort_key_narrows_by_deployment_then_type():
    item = to_item(conn("c1", deployment_id="prod-1", connection_type="client"))
    assert item[SCOPE_KEY] == {"S": "prod-1#client#c1"}
