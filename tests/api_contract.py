"""The management API's OpenAPI document as a test oracle.

`check_response` fails a test whose response is not documented: a status the operation does
not list, a body that does not match the schema declared for it (JSON Schema 2020-12, as
OpenAPI 3.1 says), a missing documented header. Paths the document does not have must answer
404 and methods it does not list 405, both as its `Error`. Used by tests/test_api.py (Django's
AsyncClient) and tests/e2e/test_api_e2e.py (real HTTP).
"""

import json
import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from realtime.operate.api.views import OPENAPI_PATH

DOCUMENT = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
PREFIX = DOCUMENT["servers"][0]["url"]  # "/api"
_URI = "urn:realtime:openapi"
_REGISTRY = Registry().with_resource(_URI, DRAFT202012.create_resource(DOCUMENT))
_TEMPLATES = [
    (re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", template) + "$"), template)
    for template in DOCUMENT["paths"]
]
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _pointer(*parts: str) -> str:
    return "/".join(["", *(p.replace("~", "~0").replace("/", "~1") for p in parts)])


def _resolve(pointer: str) -> tuple[str, dict]:
    """Follow `$ref`s from a pointer into the document; returns the final pointer and node."""
    node = DOCUMENT
    for part in pointer.split("/")[1:]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        return _resolve(node["$ref"].removeprefix("#"))
    return pointer, node


def documented_response(method: str, path: str, status: int) -> tuple[str, dict]:
    """The pointer to, and the Response Object for, this answer; fails if undocumented."""
    assert path.startswith(PREFIX + "/"), f"{path} is not under {PREFIX}/"
    relative = path[len(PREFIX) :]
    template = next((t for pattern, t in _TEMPLATES if pattern.match(relative)), None)
    if template is None:
        assert status == 404, f"{method} {path}: undocumented path answered {status}, not 404"
        return _resolve(_pointer("components", "responses", "NotFound"))
    item = DOCUMENT["paths"][template]
    if method.lower() not in item:
        allowed = sorted(m for m in item if m in _METHODS)
        assert status == 405, (
            f"{method} {template} is not documented (only {allowed}): got {status}"
        )
        return _resolve(_pointer("components", "responses", "MethodNotAllowed"))
    responses = item[method.lower()]["responses"]
    assert str(status) in responses, (
        f"{method} {template} answered {status}, documented: {sorted(responses)}"
    )
    return _resolve(_pointer("paths", template, method.lower(), "responses", str(status)))


def check_response(method: str, url: str, status: int, headers: dict[str, str], body: bytes):
    """Check one response against the document; returns its parsed JSON body.

    Args:
        headers: response headers, names in any case.
    """
    path = urlsplit(url).path
    pointer, response = documented_response(method, path, status)
    lowered = {name.lower(): value for name, value in headers.items()}
    for name in response.get("headers", {}):
        assert name.lower() in lowered, f"{method} {path} {status}: header {name} missing"
    content_type = lowered.get("content-type", "").split(";")[0].strip()
    assert content_type == "application/json", f"{method} {path} {status}: {content_type}"
    assert "application/json" in response["content"], f"{pointer} declares no JSON body"
    payload = json.loads(body)
    schema = {"$ref": f"{_URI}#{pointer}/content/application~1json/schema"}
    validator = Draft202012Validator(
        schema, registry=_REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {path} {status} does not match {pointer}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
    )
    return payload


def schema_errors(schema_name: str, instance) -> list[str]:
    """Validation errors of `instance` against components/schemas/<schema_name>."""
    validator = Draft202012Validator(
        {"$ref": f"{_URI}#/components/schemas/{schema_name}"}, registry=_REGISTRY
    )
    return [error.message for error in validator.iter_errors(instance)]


TOKEN = "e2e-token-0123456789abcdef"
OTHER_TOKEN = "e2e-rotated-token-fedcba9876543210"


class Api:
    """HTTP calls to one server's API; each answer must be documented."""

    def __init__(self, port: int, token: str | None = TOKEN):
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def __call__(
        self, method: str, path: str, body=None, *, content_type: str = "application/json"
    ) -> tuple[int, dict, dict]:
        """Returns (status, headers, JSON body)."""
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, answer_headers, raw = (
                    response.status,
                    dict(response.headers),
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            status, answer_headers, raw = error.code, dict(error.headers), error.read()
        return status, answer_headers, check_response(method, path, status, answer_headers, raw)
