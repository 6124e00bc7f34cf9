"""Operator pages in one process: Django's test clients, moto's mock, real consumers.

Scenarios that deliver run each request as daphne does: Django's ASGIHandler gives every
request a sync thread of its own (a ThreadSensitiveContext). A sync view then waits for a
consumer's acknowledgement on that thread, while the consumer's dispatch (channels'
aclose_old_connections) uses the shared sync thread. Those requests run on other threads, so
their tests commit their users (`transactional_db`).
tests/e2e/test_operator_browser.py drives the same pages in a browser against daphne.
"""

import asyncio
import re
import time
import uuid
from urllib.parse import quote

import pytest
from asgiref.sync import ThreadSensitiveContext
from django.test import AsyncClient, Client

from realtime.core.connection import Connection, isoformat
from realtime.core.handshake import ConnectionRequest
from realtime.operate.admin import views
from realtime.registry.dynamodb import DynamoDBRegistry
from realtime.server.runtime import runtime
from tests.conftest import use_registry
from tests.operate.test_delivery import open_client

LIST = "/admin/realtime/connections/"
TENANTS = "/admin/realtime/tenants/"
APP = "/admin/realtime/"


# A connection id as the server issues them, but never registered.
NEVER = str(uuid.uuid4())


def detail(connection_id: str) -> str:
    return f"{LIST}{connection_id}/"


@pytest.fixture
def registry(aws, mocked_client, settings, monkeypatch) -> DynamoDBRegistry:
    """The process-wide registry (what views and consumers get), on the session's client."""
    settings.DELIVERY_TIMEOUT_SECONDS = 0.3
    registry = DynamoDBRegistry(client=mocked_client, table_name=settings.DYNAMODB_TABLE_NAME)
    registry.create_table()
    use_registry(registry)
    return registry


@pytest.fixture
def staff(db, django_user_model):
    return django_user_model.objects.create_user("operator", is_staff=True)


@pytest.fixture
def operator(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def async_operator(transactional_db, django_user_model) -> AsyncClient:
    client = AsyncClient()
    client.force_login(django_user_model.objects.create_user("operator", is_staff=True))
    return client


async def post(client: AsyncClient, url: str, data: dict, **kwargs):
    """POST (and follow redirects) in a sync thread of the request's own, as under daphne."""
    async with ThreadSensitiveContext():
        return await client.post(url, data, **kwargs)


def register(
    registry, tenant="acme", deployment="prod-1", kind="client", *, holder: str | None = None
) -> Connection:
    """A registry item with no consumer behind it: enough for pages that only read."""
    record = Connection.open(
        ConnectionRequest(tenant, deployment, kind),
        now=time.time(),
        ttl_seconds=3600,
        instance_id=holder or runtime().instance_id,
        channel_name="specific.test!nobody",
        client_addr="127.0.0.1:5000",
    )
    registry.register(record)
    return record


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def ids_of(response) -> list[str]:
    return [row.record.connection_id for row in response.context["rows"]]


# --- access -----------------------------------------------------------------------


@pytest.mark.parametrize("url", [LIST, detail(NEVER), TENANTS, APP])
def test_anonymous_visitors_are_sent_to_the_login_page(db, registry, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={quote(url)}"


def test_users_who_are_not_staff_are_sent_to_the_login_page(registry, django_user_model):
    record = register(registry)
    user = django_user_model.objects.create_user("visitor")
    client = Client()
    client.force_login(user)
    for url in (LIST, TENANTS):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={quote(url)}"
    response = client.post(LIST, {"action": "disconnect", "selected": [record.connection_id]})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert registry.get(record.connection_id) == record


def test_posts_need_the_csrf_token(registry, staff):
    record = register(registry)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    action = {"action": "send", "message": '{"a": 1}', "selected": [record.connection_id]}
    assert client.post(LIST, action).status_code == 403
    assert client.post(detail(record.connection_id), action).status_code == 403
    assert registry.get(record.connection_id) == record

    page = client.get(f"{LIST}?tenant=acme").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        f"{LIST}?tenant=acme",
        {**action, "selected": [NEVER], "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302


def test_the_admin_index_and_sidebar_lead_to_the_pages(registry, operator):
    index = operator.get("/admin/")
    # Staff without model permissions: the Realtime pages only ask for staff.
    assert [app["name"] for app in index.context["app_list"]] == ["Realtime"]
    html = index.content.decode()
    assert f'href="{LIST}"' in html and f'href="{TENANTS}"' in html

    app = operator.get(APP)
    assert app.status_code == 200
    assert [m["name"] for m in app.context["app_list"][0]["models"]] == [
        "Connections",
        "Tenants",
        "Instances",
    ]

    sidebar = operator.get(TENANTS).content.decode()
    assert 'id="nav-sidebar"' in sidebar and f'href="{LIST}"' in sidebar


# --- the list -----------------------------------------------------------------------


def test_without_a_tenant_the_list_offers_the_tenants(registry, operator):
    for _ in range(2):
        register(registry, "acme")
    register(registry, "beta")
    response = operator.get(LIST)
    assert response.status_code == 200
    assert response.context["rows"] is None
    assert [(t.tenant, t.total) for t in response.context["tenants"]] == [("acme", 2), ("beta", 1)]
    assert f'href="{LIST}?tenant=beta"' in response.content.decode()


def test_the_list_pages_through_a_tenant_without_repeats(registry, operator, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 4)
    acme = {register(registry, "acme").connection_id for _ in range(10)}
    register(registry, "beta")
    pages, url = [], f"{LIST}?tenant=acme"
    while url:
        response = operator.get(url)
        assert response.status_code == 200
        pages.append(ids_of(response))
        if len(pages) > 1:
            assert response.context["first_url"] == f"{LIST}?tenant=acme"
        url = response.context.get("next_url")
    assert [len(page) for page in pages] == [4, 4, 2]
    listed = [cid for page in pages for cid in page]
    assert len(set(listed)) == 10 and set(listed) == acme


def test_the_list_narrows_by_deployment_then_type(registry, operator):
    wanted = {register(registry, "acme", "prod-1", "client").connection_id for _ in range(2)}
    worker = register(registry, "acme", "prod-1", "worker").connection_id
    register(registry, "acme", "prod-10", "client")  # shares the prefix "prod-1"
    register(registry, "beta", "prod-1", "client")
    by_deployment = operator.get(f"{LIST}?tenant=acme&deployment_id=prod-1")
    assert set(ids_of(by_deployment)) == wanted | {worker}
    by_type = operator.get(f"{LIST}?tenant=acme&deployment_id=prod-1&connection_type=client")
    assert set(ids_of(by_type)) == wanted
    assert f'href="{detail(worker)}"' in by_deployment.content.decode()


@pytest.mark.parametrize(
    ("query", "field", "error"),
    [
        ("tenant=bad%20value", "tenant", "Enter 1..128 characters of A-Z a-z 0-9 . _ -."),
        ("tenant=a%23b", "tenant", "Enter 1..128 characters of A-Z a-z 0-9 . _ -."),
        ("tenant=" + "a" * 129, "tenant", "Enter 1..128 characters of A-Z a-z 0-9 . _ -."),
        (
            "tenant=acme&connection_type=client",
            "connection_type",
            "Filter by a deployment to filter by type.",
        ),
        ("deployment_id=prod-1", "deployment_id", "Filter by a tenant to filter by deployment."),
    ],
)
def test_filters_follow_the_handshake_rule(registry, operator, query, field, error):
    register(registry)
    response = operator.get(f"{LIST}?{query}")
    assert response.status_code == 400
    assert response.context["filter_form"].errors == {field: [error]}
    assert response.context["rows"] is None and response.context["tenants"] is None


def test_a_cursor_of_another_query_is_refused(registry, operator, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 1)
    for tenant in ("acme", "acme", "beta"):
        register(registry, tenant)
    next_url = operator.get(f"{LIST}?tenant=acme").context["next_url"]
    response = operator.get(next_url.replace("tenant=acme", "tenant=beta"))
    assert response.status_code == 400
    assert messages_of(response) == ["This page link is not valid for these filters."]


def test_search_by_id_opens_the_connection(registry, operator):
    record = register(registry)
    response = operator.get(f"{LIST}?q={record.connection_id}")
    assert response.status_code == 302
    assert response["Location"] == detail(record.connection_id)

    for unknown in (NEVER, "not-an-id"):
        missing = operator.get(f"{LIST}?q={unknown}&tenant=acme")
        assert missing.status_code == 200
        assert messages_of(missing) == [f"There is no live connection {unknown}."]
        assert ids_of(missing) == [record.connection_id]  # the filters stay


# --- detail and summary -------------------------------------------------------------


def test_detail_shows_every_field_of_the_record(registry, operator):
    record = register(registry)
    response = operator.get(detail(record.connection_id))
    assert response.status_code == 200
    assert [(name, value) for _, name, value in response.context["fields"]] == [
        ("connection_id", record.connection_id),
        ("tenant", "acme"),
        ("deployment_id", "prod-1"),
        ("connection_type", "client"),
        ("connected_at", record.connected_at),
        ("expires_at", record.expires_at),
        ("instance_id", runtime().instance_id),
        ("channel_name", "specific.test!nobody"),
        ("client_addr", "127.0.0.1:5000"),
    ]
    html = response.content.decode()
    assert f"{record.expires_at} ({isoformat(record.expires_at)})" in html
    assert 'name="csrfmiddlewaretoken"' in html


@pytest.mark.parametrize("connection_id", [NEVER, "not-an-id"])
def test_detail_of_a_connection_that_is_gone_is_404(registry, operator, connection_id):
    response = operator.get(detail(connection_id))
    assert response.status_code == 404
    html = response.content.decode()
    assert f"There is no live connection <code>{connection_id}</code>" in html
    assert operator.post(detail(connection_id), {"action": "disconnect"}).status_code == 404


def test_the_tenant_summary_counts_per_deployment_and_type(registry, operator):
    for tenant, deployment, kind in [
        ("acme", "prod-1", "client"),
        ("acme", "prod-1", "client"),
        ("acme", "prod-1", "worker"),
        ("acme", "prod-2", "client"),
        ("beta", "prod-1", "client"),
    ]:
        register(registry, tenant, deployment, kind)
    response = operator.get(TENANTS)
    assert response.status_code == 200
    summary = [
        (
            tenant.tenant,
            tenant.total,
            [
                (d.deployment_id, d.total, [(t.connection_type, t.total) for t in d.types])
                for d in tenant.deployments
            ],
        )
        for tenant in response.context["tenants"]
    ]
    assert summary == [
        (
            "acme",
            4,
            [
                ("prod-1", 3, [("client", 2), ("worker", 1)]),
                ("prod-2", 1, [("client", 1)]),
            ],
        ),
        ("beta", 1, [("prod-1", 1, [("client", 1)])]),
    ]
    html = response.content.decode()
    assert "5 connections in 2 tenants" in html
    assert f'href="{LIST}?tenant=acme&amp;deployment_id=prod-1&amp;connection_type=worker"' in html


UNAVAILABLE = (
    "The connection registry is unavailable, try again later "
    "(DynamoDB {} failed: ResourceNotFoundException)."
)


@pytest.mark.parametrize(
    ("url", "operations"),
    [
        (LIST, ["scan"]),
        (f"{LIST}?tenant=acme", ["query"]),
        (f"{LIST}?q={NEVER}", ["get_item", "scan"]),
        (TENANTS, ["scan"]),
        (detail(NEVER), ["get_item"]),
    ],
)
def test_registry_failures_are_messages_not_500s(registry, operator, settings, url, operations):
    settings.DYNAMODB_TABLE_NAME = "no_such_table"  # runtime().registry starts afresh on it
    response = operator.get(url)
    assert response.status_code == 503
    assert messages_of(response) == [UNAVAILABLE.format(operation) for operation in operations]


# --- actions, with real consumers ---------------------------------------------------


def test_disconnect_selected_closes_them_with_the_code(registry, async_operator):
    async def scenario():
        clients = [await open_client() for _ in range(3)]
        (first, first_id), (second, second_id), (kept, kept_id) = clients
        response = await post(
            async_operator,
            f"{LIST}?tenant=acme",
            {"action": "disconnect", "code": "4321", "selected": [first_id, second_id, NEVER]},
            follow=True,
        )
        assert response.status_code == 200
        assert messages_of(response) == [
            "Disconnected 2 connections with close code 4321.",
            f"Already gone (1): {NEVER}.",
        ]
        assert ids_of(response) == [kept_id]
        for client in (first, second):
            closed = await client.receive_output(timeout=1)
            assert closed == {"type": "websocket.close", "code": 4321}
        assert await kept.receive_nothing(timeout=0.1)
        await kept.disconnect()
        return first_id, second_id, kept_id

    first_id, second_id, kept_id = asyncio.run(scenario())
    assert registry.get(first_id) is None and registry.get(second_id) is None
    assert registry.get(kept_id) is None  # closed by the test itself, deregistered


def test_disconnect_from_the_detail_page_uses_4000_by_default(registry, async_operator):
    async def scenario():
        client, connection_id = await open_client()
        response = await post(
            async_operator, detail(connection_id), {"action": "disconnect", "code": ""}
        )
        assert response.status_code == 302
        assert response["Location"] == f"{LIST}?tenant=acme"
        assert await client.receive_output(timeout=1) == {"type": "websocket.close", "code": 4000}
        async with ThreadSensitiveContext():
            followed = await async_operator.get(response["Location"])
        assert messages_of(followed) == ["Disconnected 1 connection with close code 4000."]
        return connection_id

    assert registry.get(asyncio.run(scenario())) is None


def test_send_from_the_detail_page_reaches_the_client(registry, async_operator):
    async def scenario():
        client, connection_id = await open_client()
        response = await post(
            async_operator,
            detail(connection_id),
            {"action": "send", "message": '{"hello": ["world", 1], "type": "ping"}'},
            follow=True,
        )
        assert response.status_code == 200
        assert messages_of(response) == ["Sent the message to 1 connection."]
        assert await client.receive_json_from(timeout=1) == {
            "type": "message",
            "data": {"hello": ["world", 1], "type": "ping"},
        }
        await client.disconnect()

    asyncio.run(scenario())


def test_send_to_selected_reaches_exactly_them(registry, async_operator, settings):
    settings.WS_MAX_MESSAGE_BYTES = 20  # the value is 14 bytes encoded, 64 as typed

    async def scenario():
        (one, one_id), (two, two_id), (other, _) = [await open_client() for _ in range(3)]
        response = await post(
            async_operator,
            f"{LIST}?tenant=acme",
            {
                "action": "send",
                "message": f'[1, {" " * 50}"two", null]',
                "selected": [one_id, two_id],
            },
            follow=True,
        )
        assert messages_of(response) == ["Sent the message to 2 connections."]
        for client in (one, two):
            received = await client.receive_json_from(timeout=1)
            assert received == {"type": "message", "data": [1, "two", None]}
        assert await other.receive_nothing(timeout=0.1)
        for client in (one, two, other):
            await client.disconnect()

    asyncio.run(scenario())


def test_an_orphaned_item_counts_as_gone_and_is_removed(registry, operator):
    orphan = register(registry)  # held by this process, but no consumer answers
    response = operator.post(
        f"{LIST}?tenant=acme",
        {"action": "send", "message": "{}", "selected": [orphan.connection_id]},
        follow=True,
    )
    assert messages_of(response) == [f"Already gone (1): {orphan.connection_id}."]
    assert ids_of(response) == []
    assert registry.get(orphan.connection_id) is None


def test_a_connection_another_server_holds_is_an_error_message(registry, operator):
    record = register(registry, holder="another-host-1-abcd")
    response = operator.post(
        detail(record.connection_id), {"action": "send", "message": "{}"}, follow=True
    )
    assert response.status_code == 200
    assert messages_of(response) == [
        f"Could not reach {record.connection_id}: connection {record.connection_id} is held by "
        "instance another-host-1-abcd, which the in-memory channel layer cannot reach: "
        "set REDIS_URL on every instance"
    ]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (
            {"action": "send", "message": "not json"},
            "Message: message is not valid JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        ({"action": "send", "message": '{"a": NaN}'}, "Message: NaN is not valid JSON"),
        (
            {"action": "send", "message": "[" * 129 + "]" * 129},
            "Message: message is nested too deeply (more than 128 levels)",
        ),
        ({"action": "send", "message": ""}, "Message: Enter the JSON value to send."),
        (
            {"action": "send", "message": '{"a":   "' + "x" * 94 + '"}'},  # 102 bytes compact
            "Message: the message is 102 bytes encoded; the limit is 100 (WS_MAX_MESSAGE_BYTES)",
        ),
        (
            {"action": "send", "message": '{"n": 18446744073709551616}'},
            "Message: the message holds an integer outside the 64-bit range "
            "(-9223372036854775808..18446744073709551615); send it as a string",
        ),
        (
            {"action": "send", "message": '["\\ud800"]'},
            "Message: the message holds a string with a lone surrogate (\\ud800-\\udfff)",
        ),
        (
            {"action": "disconnect", "code": "3999"},
            "Close code: Ensure this value is greater than or equal to 4000.",
        ),
        (
            {"action": "disconnect", "code": "5000"},
            "Close code: Ensure this value is less than or equal to 4999.",
        ),
        ({"action": "disconnect", "code": "abc"}, "Close code: Enter a whole number."),
        (
            {"action": "reboot"},
            "Action: Select a valid choice. reboot is not one of the available choices.",
        ),
    ],
)
def test_invalid_actions_are_refused_with_a_message(registry, operator, settings, form, error):
    settings.WS_MAX_MESSAGE_BYTES = 100
    record = register(registry)
    response = operator.post(f"{LIST}?tenant=acme", {**form, "selected": [record.connection_id]})
    assert response.status_code == 400
    assert messages_of(response) == [error]
    assert response.context["selected"] == {record.connection_id}  # still ticked
    assert registry.get(record.connection_id) == record  # nothing was attempted


@pytest.mark.parametrize(
    ("selected", "error"),
    [([], "Select at least one connection."), (["not-an-id"], "Not a connection id.")],
)
def test_an_action_needs_connection_ids(registry, operator, selected, error):
    response = operator.post(f"{LIST}?tenant=acme", {"action": "disconnect", "selected": selected})
    assert response.status_code == 400
    assert messages_of(response) == [error]


def test_invalid_input_on_the_detail_page_is_a_form_error(registry, operator):
    record = register(registry)
    url = detail(record.connection_id)
    send = operator.post(url, {"action": "send", "message": '{"a": Infinity}'})
    assert send.status_code == 400
    assert send.context["message_form"].errors == {"message": ["Infinity is not valid JSON"]}
    close = operator.post(url, {"action": "disconnect", "code": "1000"})
    assert close.status_code == 400
    assert close.context["disconnect_form"].errors == {
        "code": ["Ensure this value is greater than or equal to 4000."]
    }
    assert registry.get(record.connection_id) == record
