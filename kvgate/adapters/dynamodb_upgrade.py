"""Copy a kvgate table of the old layout (one item per key, partition key only) into a
table of the current one (partition and sort key; create it first with
``kvgate dynamodb create-table``):

    python -m kvgate.adapters.dynamodb_upgrade 'dynamodb://old?region=..' 'dynamodb://new?region=..'

Each key's item becomes its head item as it is (``sk`` = ``h``): a collection stays
inline in it, and the first write that takes it past the inline limits gives it one item
per element.  Cached scripts are copied too; SCAN cursors are not.  Stop the kvgate
processes serving the old table first: writes made during the copy may be missed.
"""

from __future__ import annotations

import sys
from typing import Any

from kvgate.adapters.dynamodb_items import HEAD, KEY_PREFIX, SCRIPT_PREFIX


def upgrade(old_url: str, new_url: str) -> int:
    """Copy every key and script of ``old_url`` into ``new_url``; how many items."""
    import botocore.session

    from kvgate.adapters.dynamodb import parse_url

    old, new = parse_url(old_url), parse_url(new_url)
    session = botocore.session.get_session()
    source = session.create_client("dynamodb", region_name=old.region, endpoint_url=old.endpoint_url)
    target = session.create_client("dynamodb", region_name=new.region, endpoint_url=new.endpoint_url)
    copied = 0
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        page = source.scan(TableName=old.table, ConsistentRead=True, **kwargs)
        batch = [
            {"PutRequest": {"Item": {**item, "sk": {"B": HEAD}}}}
            for item in page.get("Items", [])
            if item["pk"]["B"][:1] in (KEY_PREFIX, SCRIPT_PREFIX) and "sk" not in item
        ]
        for at in range(0, len(batch), 25):
            pending = batch[at : at + 25]
            while pending:
                r = target.batch_write_item(RequestItems={new.table: pending})
                pending = r.get("UnprocessedItems", {}).get(new.table, [])
        copied += len(batch)
        start = page.get("LastEvaluatedKey")
        if start is None:
            return copied


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"copied {upgrade(argv[0], argv[1])} items")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
