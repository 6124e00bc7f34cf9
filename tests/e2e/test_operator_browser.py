"""The operator pages in a real browser: Debian's chromium, driven by Playwright, against daphne.

One operator's round: log in, find a tenant's live connections, open one, send it a message,
disconnect two from the action bar, read the tenant summary. The list page's screenshot is
kept as artifacts/operator-connections.png (git-ignored).
"""

import json

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import Server, item_ids, wait_until
from tests.processes import ROOT, daphne_server, manage, server_env

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "artifacts" / "operator-connections.png"
# Debian's chromium: Playwright's own browser download cannot work here. We run as root.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
USERNAME, PASSWORD = "operator", "operator-password-3141"


def manage_ok(env: dict[str, str], *args: str) -> None:
    result = manage(env, *args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def server(moto_url, table_name, registry, tmp_path):
    """daphne with a file database in which migrate and createsuperuser made an operator."""
    # A file database: with the default in-memory one, each process would have its own.
    env = server_env(
        moto_url, table_name, DATABASE_URL=f"sqlite:///{tmp_path / 'operators.sqlite3'}"
    )
    manage_ok(env, "migrate", "--noinput")
    manage_ok(
        {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        "createsuperuser",
        "--noinput",
        f"--username={USERNAME}",
        "--email=operator@example.com",
    )
    process = daphne_server(env).start()
    yield Server(process, registry)
    process.stop()


def query(tenant: str, deployment_id: str, connection_type: str) -> dict:
    return {"tenant": tenant, "deployment_id": deployment_id, "connection_type": connection_type}


def listed_ids(page: Page) -> set[str]:
    return set(page.locator("#result_list tbody th.field-connection_id a").all_inner_texts())


def test_an_operator_finds_messages_and_disconnects_connections(server):
    (first, first_id), (second, second_id), (worker, worker_id) = [
        server.open_client(query("acme", "prod-1", kind)) for kind in ("client", "client", "worker")
    ]
    other, other_id = server.open_client(query("beta", "prod-9", "client"))
    base = f"http://127.0.0.1:{server.port}"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.set_default_timeout(10_000)

            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("#login-form input[type=submit]")
            index = page.locator("#content-main")
            index.get_by_role("link", name="Connections", exact=True).click()
            expect(page.locator("#tenant_list tr[data-tenant=acme] .field-total")).to_have_text("3")

            page.fill("#id_tenant", "acme")
            page.click("#connection-filter input[type=submit]")
            expect(page.locator("#result_list tbody tr")).to_have_count(3)
            assert listed_ids(page) == {first_id, second_id, worker_id}
            # Styled by the admin's CSS (served by whitenoise), not raw HTML.
            assert page.locator("#header").evaluate("e => getComputedStyle(e).display") == "flex"

            SCREENSHOT.parent.mkdir(exist_ok=True)
            SCREENSHOT.unlink(missing_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert SCREENSHOT.stat().st_size > 20_000

            page.get_by_role("link", name=first_id, exact=True).click()
            expect(page.locator("#record .field-tenant .readonly")).to_have_text("acme")
            page.fill("#id_message", '{"text": "hello from the admin"}')
            page.click("#send-form input[type=submit]")
            expect(page.locator(".messagelist .success")).to_have_text(
                "Sent the message to 1 connection."
            )
            assert json.loads(first.recv(timeout=5)) == {
                "type": "message",
                "data": {"text": "hello from the admin"},
            }

            page.locator(".breadcrumbs").get_by_role("link", name="Connections").click()
            page.check(f"input.action-select[value='{first_id}']")
            page.check(f"input.action-select[value='{second_id}']")
            expect(page.locator(".action-counter")).to_have_text("2 of 3 selected")  # actions.js
            page.select_option("#id_action", "disconnect")
            page.fill("#id_code", "4321")
            page.click("#changelist-form button[name=index]")
            expect(page.locator(".messagelist .success")).to_have_text(
                "Disconnected 2 connections with close code 4321."
            )
            assert listed_ids(page) == {worker_id}
            for ws in (first, second):
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4321
            assert item_ids(server.registry) == {worker_id, other_id}

            page.locator(".breadcrumbs").get_by_role("link", name="Realtime").click()
            page.locator("#content-main").get_by_role("link", name="Tenants").click()
            expect(page.locator("tr[data-tenant=acme] .field-total")).to_have_text("1")
            expect(page.locator("tr[data-tenant=beta] .field-total")).to_have_text("1")
            expect(page.locator("#summary-total")).to_have_text("2 connections in 2 tenants")
        finally:
            browser.close()
    for ws in (worker, other):
        ws.close()


def test_at_1280_pixels_the_list_shows_the_instance_and_instances_lead_to_their_connections(
    server,
):
    clients = [server.open_client(query("acme", "prod-1", "client")) for _ in range(2)]
    base = f"http://127.0.0.1:{server.port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(10_000)
            page.goto(f"{base}/admin/login/?next=/admin/realtime/instances/")
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("#login-form input[type=submit]")

            row = page.locator("#instance_list tbody tr")
            expect(row).to_have_count(1)
            expect(row.locator(".field-state")).to_have_text("live")
            # The count is the one stored at the instance's last renewal (every 3 s).
            assert wait_until(
                lambda: page.reload() and row.locator(".field-connections").inner_text() == "2"
            )
            instance_id = row.get_attribute("data-instance")
            row.get_by_role("link", name=instance_id, exact=True).click()

            expect(page.locator("#result_list tbody tr")).to_have_count(2)
            assert listed_ids(page) == {connection_id for _, connection_id in clients}
            cell = page.locator("#result_list tbody td.field-instance_id").first
            expect(cell).to_have_text(instance_id)
            # Inside the results' box, which scrolls sideways when its table is too wide.
            box = cell.bounding_box()
            results = page.locator("#changelist-form .results")
            frame = results.bounding_box()
            assert box["x"] + box["width"] <= frame["x"] + frame["width"], (box, frame)
            assert results.evaluate("e => e.scrollWidth <= e.clientWidth"), "it scrolls sideways"
            assert page.evaluate(
                "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            ), "the page scrolls sideways at 1280 px"
            page.screenshot(path=str(SCREENSHOT.with_name("operator-connections-1280.png")))
        finally:
            browser.close()
    for ws, _ in clients:
        ws.close()
