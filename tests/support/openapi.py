"""openapi.yaml as the tests read it: the spec's paths, a :class:`Contract` that checks a real
reply against what the spec declares for it, and :class:`Call` requests sent and checked
with :func:`run_calls`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from kvgate.app import OPS_PREFIX
from tests.support.api import RW

SPEC_FILE = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC_URI = "urn:kvgate:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

ROOT = "/"
PATH_FORM = "/{command}/{args}"
PIPELINE = "/pipeline"
MULTI = "/multi-exec"
SUBSCRIBE = "/subscribe/{channels}"
PSUBSCRIBE = "/psubscribe/{patterns}"
MONITOR = "/monitor"
HEALTH = "/_kvgate/health"
METRICS = "/_kvgate/metrics"


@cache
def load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_FILE.read_text())


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


class Contract:
    """Looks up what the spec declares for a reply and checks a real reply against it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))

    def at(self, pointer: str) -> Any:
        node: Any = self.spec
        for part in pointer.lstrip("/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow local ``$ref``s; returns the node and the pointer where it really lives."""
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            pointer = ref[1:]
            node = self.at(pointer)
        return node, pointer

    def validate(self, instance: Any, pointer: str) -> None:
        """Validate against the schema at ``pointer``; its ``$ref``s resolve in the document."""
        self.validator(pointer).validate(instance)

    def validator(self, pointer: str) -> OAS31Validator:
        return OAS31Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry, format_checker=oas31_format_checker
        )

    def operations(self, template: str) -> dict[str, Any]:
        item = self.spec["paths"][template]
        return {m: op for m, op in item.items() if m in HTTP_METHODS}

    def response(self, template: str, method: str, status: int) -> tuple[dict[str, Any], str]:
        assert template in self.spec["paths"], f"{template} is not in the spec"
        operations = self.operations(template)
        op = method.lower()
        if op not in operations:
            # A method the path has no operation for: must be refused, as the spec's 405 says.
            assert status == 405, f"{method} {template} answered {status}; the spec has no {method} here"
            op = next((m for m, o in operations.items() if "405" in o["responses"]), None)
            assert op is not None, f"no operation of {template} documents 405"
        responses = operations[op]["responses"]
        assert str(status) in responses, (
            f"{method} {template} answered {status}; the spec documents {sorted(responses)}"
        )
        return self.resolve(responses[str(status)], f"/paths/{escape(template)}/{op}/responses/{status}")

    def check(self, template: str, method: str, status: int, headers: Any, raw: bytes) -> Any:
        """Check one reply; returns the parsed body (None when there is none)."""
        where = f"{method} {template} -> {status}"
        response, pointer = self.response(template, method, status)
        for name, header in response.get("headers", {}).items():
            header, header_pointer = self.resolve(header, f"{pointer}/headers/{escape(name)}")
            value = headers.get(name)
            if header.get("required"):
                assert value, f"{where}: header {name} is missing"
            if value is not None:
                self.validate(value, f"{header_pointer}/schema")
        content = response.get("content")
        if method == "HEAD" or not content:
            assert raw == b"", f"{where}: a body where the spec declares none: {raw[:200]!r}"
            return None
        media = headers.get("Content-Type", "").split(";")[0].strip()
        assert media in content, f"{where}: Content-Type {media!r}, spec has {sorted(content)}"
        schema = f"{pointer}/content/{escape(media)}/schema"
        if media == "text/event-stream":
            # The schema of an event stream describes each event (see the Event schema).
            body: Any = sse_events(raw)
            for event in body:
                try:
                    self.validate(event, schema)
                except Exception as exc:
                    raise AssertionError(f"{where}: event {event!r} does not match the spec: {exc}") from None
            return body
        # Floats parse as Decimal, which no `integer` schema accepts (a float 2.0 would pass).
        body = json.loads(raw, parse_float=Decimal) if media == "application/json" else raw.decode()
        try:
            self.validate(body, schema)
        except Exception as exc:
            raise AssertionError(f"{where}: {body!r} does not match the spec: {exc}") from None
        return body


def sse_events(raw: bytes) -> list[dict[str, str]]:
    """The events of a Server-Sent Events stream as a client reads them: blank-line separated
    blocks of ``field: value`` lines, comments skipped, ``event`` defaulting to ``message``.
    Stricter than a browser: every field is kept (the spec allows only ``data``), repeated
    fields are kept apart, and a block left unfinished at the end counts as an event."""
    events: list[dict[str, str]] = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        event: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            assert name not in event, f"field {name!r} twice in one event: {block!r}"
            event[name] = value.removeprefix(" ")
        if event:
            events.append({"event": "message", **event})
    return events


# --- requests ------------------------------------------------------------------------


MISSING: Any = object()


@dataclass
class Call:
    method: str
    path: str  # as sent, relative to the base path
    template: str  # the spec path it falls under
    status: int
    json: Any = MISSING
    data: bytes | None = None
    token: str | None = RW
    headers: dict[str, str] = field(default_factory=dict)
    expect: Any = MISSING  # the whole body, when a case pins it


async def send(client: TestClient, call: Call, base: str = "") -> tuple[int, Any, bytes]:
    headers = {"Authorization": f"Bearer {call.token}"} if call.token else {}
    headers.update(call.headers)
    kwargs: dict[str, Any] = {"headers": headers}
    if call.json is not MISSING:
        kwargs["json"] = call.json
    elif call.data is not None:
        kwargs["data"] = call.data
    path = call.path if call.path.startswith(OPS_PREFIX) else base + call.path
    async with client.request(call.method, path, **kwargs) as resp:
        return resp.status, resp.headers, await resp.read()


async def run_calls(contract: Contract, client: TestClient, calls: list[Call], base: str = "") -> None:
    for call in calls:
        status, headers, raw = await send(client, call, base)
        label = f"{call.method} {base}{call.path}"
        assert status == call.status, f"{label}: {status} {raw[:300]!r}"
        body = contract.check(call.template, call.method, status, headers, raw)
        if call.expect is not MISSING:
            assert body == call.expect, label
