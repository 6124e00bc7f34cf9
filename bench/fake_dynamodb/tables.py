"""In-memory tables and their global secondary indexes: items by key, index entries sorted.

A table checks the keys of what is written to it (its own and its indexes') and moves every
write into its indexes; the operations that read and write it are in *_operations.py.
"""

import bisect
import time
import uuid

from bench.fake_dynamodb.errors import DynamoError, invalid, unsupported
from bench.fake_dynamodb.values import scalar, typed

_REGION = "us-east-1"
_ACCOUNT = "123456789012"


def _key_schema(schema, attribute_types: dict, what: str) -> tuple[str, str | None]:
    if not isinstance(schema, list) or not 1 <= len(schema) <= 2:
        raise invalid(f"{what}: KeySchema must have one or two elements")
    kinds = [element.get("KeyType") for element in schema]
    if kinds not in (["HASH"], ["HASH", "RANGE"]):
        raise invalid(f"{what}: KeySchema must be a HASH key, optionally then a RANGE key")
    names = [element.get("AttributeName") for element in schema]
    for name in names:
        if attribute_types.get(name) not in ("S", "N", "B"):
            raise invalid(
                "One or more parameter values were invalid: Some index key attributes are not "
                f"defined in AttributeDefinitions. Keys: [{name}]"
            )
    return names[0], names[1] if len(names) == 2 else None


class Index:
    """A global secondary index: per partition value, a sorted list of (range value, key)."""

    def __init__(self, spec: dict, table: "Table"):
        self.name = spec.get("IndexName")
        if not self.name:
            raise invalid("A global secondary index needs an IndexName")
        self.hash_name, self.range_name = _key_schema(
            spec.get("KeySchema"), table.attribute_types, f"Index {self.name}"
        )
        self.attributes = frozenset({self.hash_name, self.range_name} - {None})
        self.hash_type = table.attribute_types[self.hash_name]
        self.range_type = table.attribute_types.get(self.range_name)
        self.key_schema = spec["KeySchema"]
        self.projection = spec.get("Projection") or {"ProjectionType": "ALL"}
        kind = self.projection.get("ProjectionType", "ALL")
        if kind not in ("ALL", "KEYS_ONLY", "INCLUDE"):
            raise invalid(f"Unknown ProjectionType {kind}")
        self.projected = None
        if kind != "ALL":
            self.projected = {*table.key_names, self.hash_name, self.range_name} - {None}
            self.projected |= set(self.projection.get("NonKeyAttributes", []))
        self.throughput = spec.get("ProvisionedThroughput")
        self.table = table
        self.partitions: dict[object, list] = {}
        self.placed: dict[tuple, tuple] = {}  # table key -> (partition, entry)
        for key, item in table.items.items():
            self.update(key, item)

    def entry(self, key: tuple, item: dict):
        value = item.get(self.hash_name)
        if value is None or self.hash_type not in value:
            return None
        if self.range_name is None:
            return scalar(self.hash_type, value[self.hash_type]), (None, key)
        sort = item.get(self.range_name)
        if sort is None or self.range_type not in sort:
            return None
        return (
            scalar(self.hash_type, value[self.hash_type]),
            (scalar(self.range_type, sort[self.range_type]), key),
        )

    def update(self, key: tuple, item: dict | None) -> None:
        new = None if item is None else self.entry(key, item)
        old = self.placed.get(key)
        if old == new:
            return
        if old is not None:
            entries = self.partitions[old[0]]
            del entries[bisect.bisect_left(entries, old[1])]
            if not entries:
                del self.partitions[old[0]]
        if new is None:
            del self.placed[key]
        else:
            bisect.insort(self.partitions.setdefault(new[0], []), new[1])
            self.placed[key] = new

    def project(self, item: dict) -> dict:
        if self.projected is None:
            return item
        return {name: value for name, value in item.items() if name in self.projected}

    def description(self) -> dict:
        description = {
            "IndexName": self.name,
            "KeySchema": self.key_schema,
            "Projection": self.projection,
            "IndexStatus": "ACTIVE",
            "IndexArn": f"{self.table.arn}/index/{self.name}",
            "ItemCount": len(self.placed),
            "IndexSizeBytes": 0,
        }
        if self.throughput:
            description["ProvisionedThroughput"] = {**self.throughput, "NumberOfDecreasesToday": 0}
        return description


class Table:
    """A table: its key schema, its items by key (a tuple of key values) and its indexes."""

    def __init__(self, request: dict):
        self.name = request["TableName"]
        definitions = request.get("AttributeDefinitions") or []
        self.attribute_types = {d.get("AttributeName"): d.get("AttributeType") for d in definitions}
        self.attribute_definitions = definitions
        self.hash_name, self.range_name = _key_schema(
            request.get("KeySchema"), self.attribute_types, f"Table {self.name}"
        )
        self.key_schema = request["KeySchema"]
        self.key_names = tuple(n for n in (self.hash_name, self.range_name) if n is not None)
        self.key_types = tuple(self.attribute_types[name] for name in self.key_names)
        if request.get("LocalSecondaryIndexes"):
            raise unsupported("LocalSecondaryIndexes")
        self.billing_mode = request.get("BillingMode", "PROVISIONED")
        self.throughput = request.get("ProvisionedThroughput")
        self.arn = f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/{self.name}"
        self.table_id = str(uuid.uuid4())
        self.created = time.time()
        self.ttl: dict = {"TimeToLiveStatus": "DISABLED"}
        self.items: dict[tuple, dict] = {}
        self.indexes: dict[str, Index] = {}
        self._index_keys: list[tuple[str, str, str]] = []  # (attribute, type, index)
        for spec in request.get("GlobalSecondaryIndexes") or []:
            self.add_index(spec)
        used = set(self.key_names)
        for index in self.indexes.values():
            used |= {index.hash_name, index.range_name} - {None}
        if used != self.attribute_types.keys():
            raise invalid(
                "One or more parameter values were invalid: Number of attributes in KeySchema "
                "does not exactly match number of attributes defined in AttributeDefinitions"
            )

    def add_index(self, spec: dict) -> None:
        index = Index(spec, self)
        if index.name in self.indexes:
            raise invalid(f"Attempting to create an index which already exists: {index.name}")
        self.indexes[index.name] = index
        self._index_keys = [
            (name, self.attribute_types[name], index.name)
            for index in self.indexes.values()
            for name in (index.hash_name, index.range_name)
            if name is not None
        ]

    def drop_index(self, name: str) -> None:
        if self.indexes.pop(name, None) is None:
            raise DynamoError("ResourceNotFoundException", f"Requested resource not found: {name}")
        self._index_keys = [entry for entry in self._index_keys if entry[2] != name]

    def key(self, key) -> tuple:
        """The table key of a request's `Key`, which must name exactly the key attributes."""
        if not isinstance(key, dict) or len(key) != len(self.key_names):
            raise invalid("The provided key element does not match the schema")
        parts = []
        for name, kind in zip(self.key_names, self.key_types, strict=True):
            value = key.get(name)
            if value is None or kind not in value or len(value) != 1:
                raise invalid("The provided key element does not match the schema")
            if value[kind] == "":
                raise invalid(
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. Key: {name}"
                )
            parts.append(scalar(kind, value[kind]))
        return tuple(parts)

    def item_key(self, item) -> tuple:
        """The table key of an item to write, checked with its index keys."""
        if not isinstance(item, dict):
            raise invalid("Item must be a map of attribute values")
        parts = []
        for name, kind in zip(self.key_names, self.key_types, strict=True):
            value = item.get(name)
            if value is None:
                raise invalid(
                    f"One or more parameter values were invalid: Missing the key {name} in the item"
                )
            actual, raw = typed(value)
            if actual != kind:
                raise invalid(
                    "One or more parameter values were invalid: Type mismatch for key "
                    f"{name} expected: {kind} actual: {actual}"
                )
            if raw == "":
                raise invalid(
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. Key: {name}"
                )
            parts.append(scalar(kind, raw))
        self.check_index_keys(item)
        return tuple(parts)

    def check_index_keys(self, item: dict) -> None:
        for name, kind, index in self._index_keys:
            value = item.get(name)
            if value is None or (type(value) is dict and len(value) == 1 and value.get(kind)):
                continue  # absent, or a non-empty value of the right type
            actual, raw = typed(value)
            if actual != kind:
                raise invalid(
                    "One or more parameter values were invalid: Type mismatch for Index Key "
                    f"{name} Expected: {kind} Actual: {actual} IndexName: {index}"
                )
            if raw == "":
                raise invalid(
                    "One or more parameter values are not valid. A value specified for a "
                    "secondary index key is not supported. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. IndexName: {index}, "
                    f"IndexKey: {name}"
                )

    def key_attributes(self, item: dict, index: Index | None = None) -> dict:
        names = list(self.key_names)
        if index is not None:
            names += [n for n in (index.hash_name, index.range_name) if n and n not in names]
        return {name: item[name] for name in names}

    def write(self, key: tuple, item: dict | None, changed: list[str] | None = None) -> None:
        """Store (or, with None, delete) the item at `key` and move it in every index.

        `changed`: the only attributes that differ from the stored item, when known; an index
        on none of them stays as it is (a refresh moves `ttl` only).
        """
        if item is None:
            if self.items.pop(key, None) is None:
                return
        else:
            self.items[key] = item
        for index in self.indexes.values():
            if changed is None or not index.attributes.isdisjoint(changed):
                index.update(key, item)

    def description(self, status: str = "ACTIVE") -> dict:
        description = {
            "TableName": self.name,
            "TableArn": self.arn,
            "TableId": self.table_id,
            "TableStatus": status,
            "CreationDateTime": self.created,
            "KeySchema": self.key_schema,
            "AttributeDefinitions": self.attribute_definitions,
            "ItemCount": len(self.items),
            "TableSizeBytes": 0,
        }
        if self.billing_mode == "PAY_PER_REQUEST":
            description["BillingModeSummary"] = {
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime": self.created,
            }
            description["ProvisionedThroughput"] = {
                "ReadCapacityUnits": 0,
                "WriteCapacityUnits": 0,
                "NumberOfDecreasesToday": 0,
            }
        else:
            description["BillingModeSummary"] = {"BillingMode": "PROVISIONED"}
            description["ProvisionedThroughput"] = {
                **(self.throughput or {}),
                "NumberOfDecreasesToday": 0,
            }
        if self.indexes:
            description["GlobalSecondaryIndexes"] = [
                index.description() for index in self.indexes.values()
            ]
        return description
