"""The operator pages: live connections, in the Django admin's look.

Each view parses the request with a form (forms.py), asks the registry or a delivery service,
and renders a template under templates/admin/realtime/. OperatorAdminSite.get_urls wraps them
in `admin_view` (staff only, login redirect, CSRF protection, never cached) and passes itself
as `admin_site`. Failures of the registry or of delivery are reported with Django's messages
framework on the page (503 when the page has nothing else to show), never as a 500.

The views are synchronous because `admin_view` is: in Django 6.1 its wrapper is a plain
function, so an async view would hand never_cache an unawaited coroutine. Under daphne, Django
runs each request's sync view in a thread of the request's own (a ThreadSensitiveContext), so
the registry's sync methods block only that request; async_to_sync runs delivery's coroutines
on the server's event loop, where the channel layer and the consumers live. A consumer's
dispatch uses Django's shared sync thread (channels' aclose_old_connections), never a view's,
so a view waiting for a consumer's acknowledgement cannot deadlock with it.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.admin import AdminSite
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from realtime.core.connection import Connection, is_connection_id, isoformat
from realtime.core.logs import event
from realtime.operate import delivery
from realtime.operate.admin.forms import (
    ConnectionActionForm,
    ConnectionFilterForm,
    ConnectionSearchForm,
    DisconnectForm,
    MessageForm,
)
from realtime.operate.delivery import ConnectionGone, ConnectionNotFound, DeliveryError
from realtime.registry import InvalidCursor, RegistryError
from realtime.server.runtime import runtime

__all__ = ["PAGE_SIZE", "connection_detail", "connection_list", "instance_list", "tenant_summary"]

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
_FILTERS = ("tenant", "deployment_id", "connection_type", "instance_id")
_DISCONNECT, _SEND = ConnectionActionForm.DISCONNECT, ConnectionActionForm.SEND


# --- pages ------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def connection_list(request: HttpRequest, *, admin_site: AdminSite) -> HttpResponse:
    """GET: search by id, or one page of a tenant's connections. POST: the action bar."""
    if request.method == "POST":
        action_form = ConnectionActionForm(request.POST)
        if action_form.is_valid():
            _run_action(request, action_form.cleaned_data)
            return HttpResponseRedirect(request.get_full_path())
        _report_form_errors(request, action_form)
        return _render_list(request, admin_site, action_form, status=400)

    search = ConnectionSearchForm(request.GET)
    if not search.is_valid():
        _report_form_errors(request, search)
    elif connection_id := search.cleaned_data["q"]:
        try:
            found = is_connection_id(connection_id) and runtime().registry.get(connection_id)
        except RegistryError as exc:
            _report_registry_error(request, exc)
        else:
            if found:
                return HttpResponseRedirect(_detail_url(admin_site, connection_id))
            messages.error(request, f"There is no live connection {connection_id}.")
    return _render_list(request, admin_site, ConnectionActionForm())


@require_http_methods(["GET", "HEAD", "POST"])
def connection_detail(
    request: HttpRequest, connection_id: str, *, admin_site: AdminSite
) -> HttpResponse:
    """One connection's record; POST with `action=send` or `action=disconnect` acts on it."""
    if not is_connection_id(connection_id):  # never issued: no need to ask DynamoDB
        return _render_gone(request, admin_site, connection_id, status=404)
    try:
        record = runtime().registry.get(connection_id)
    except RegistryError as exc:
        _report_registry_error(request, exc)
        return _render_gone(request, admin_site, connection_id, status=503)
    if record is None:
        return _render_gone(request, admin_site, connection_id, status=404)

    page_forms = {_SEND: MessageForm(), _DISCONNECT: DisconnectForm()}
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        form_class = {_SEND: MessageForm, _DISCONNECT: DisconnectForm}.get(action)
        if form_class is None:
            messages.error(request, "Unknown action.")
        else:
            form = page_forms[action] = form_class(request.POST)
            if form.is_valid():
                data = {"action": action, "selected": [connection_id], **form.cleaned_data}
                if _run_action(request, data) and action == _DISCONNECT:
                    # Nothing is left to show here: back to the connection's tenant.
                    return HttpResponseRedirect(_list_url(admin_site, tenant=record.tenant))
                return HttpResponseRedirect(request.get_full_path())
        status = 400
    context = {
        "record": record,
        "fields": [
            (f.name.replace("_", " ").capitalize(), f.name, getattr(record, f.name))
            for f in dataclasses.fields(record)
        ],
        "expires_at": isoformat(record.expires_at),
        "list_url": _list_url(admin_site, tenant=record.tenant),
        "message_form": page_forms[_SEND],
        "disconnect_form": page_forms[_DISCONNECT],
    }
    return _render(request, admin_site, "connection_detail.html", context, connection_id, status)


@require_safe
def instance_list(request: HttpRequest, *, admin_site: AdminSite) -> HttpResponse:
    """The fleet's instances, as their leases say; each links to the connections it holds."""
    try:
        leases = runtime().registry.leases()
    except RegistryError as exc:
        _report_registry_error(request, exc)
        context, status = {"instances": None}, 503
    else:
        rows = [
            _Instance(lease.operator_fields(), _list_url(admin_site, instance_id=lease.instance_id))
            for lease in leases
        ]
        context, status = {"instances": rows}, 200
    return _render(request, admin_site, "instance_list.html", context, "Instances", status)


@require_safe
def tenant_summary(request: HttpRequest, *, admin_site: AdminSite) -> HttpResponse:
    """Live connections counted per tenant, deployment and type (the registry's one Scan)."""
    try:
        tenants = _tenant_rows(admin_site)
    except RegistryError as exc:
        _report_registry_error(request, exc)
        context, status = {"tenants": None}, 503
    else:
        context, status = {"tenants": tenants, "total": sum(t.total for t in tenants)}, 200
    return _render(request, admin_site, "tenant_summary.html", context, "Tenants", status)


# --- the list -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    record: Connection
    url: str
    # An ISO time as (date, time), so that the page may break the cell between them and keep
    # every column within a laptop's width. (The expiry is on the connection's own page.)
    connected_at: tuple[str, str]


def _render_list(
    request: HttpRequest,
    admin_site: AdminSite,
    action_form: ConnectionActionForm,
    *,
    status: int = 200,
) -> HttpResponse:
    filters = ConnectionFilterForm(request.GET)
    context = {
        "filter_form": filters,
        "search_form": ConnectionSearchForm(request.GET),
        "action_form": action_form,
        "selected": set(action_form.data.getlist("selected")) if action_form.is_bound else set(),
        "rows": None,
        "tenants": None,
    }
    if not filters.is_valid():
        status = 400
    elif filters.cleaned_data["tenant"] or filters.cleaned_data["instance_id"]:
        chosen = {name: filters.cleaned_data[name] or None for name in _FILTERS}
        cursor = filters.cleaned_data["cursor"] or None
        context["page_url"] = _list_url(admin_site, cursor=cursor, **chosen)
        context["filtered"] = chosen["tenant"] or chosen["instance_id"]
        if cursor:
            context["first_url"] = _list_url(admin_site, **chosen)
        registry = runtime().registry
        try:
            if chosen["instance_id"]:
                page = registry.instance_page(chosen["instance_id"], limit=PAGE_SIZE, cursor=cursor)
            else:
                page = registry.for_tenant(
                    chosen["tenant"],
                    deployment_id=chosen["deployment_id"],
                    connection_type=chosen["connection_type"],
                    limit=PAGE_SIZE,
                    cursor=cursor,
                )
        except InvalidCursor:
            messages.error(request, "This page link is not valid for these filters.")
            status = 400
        except RegistryError as exc:
            _report_registry_error(request, exc)
            status = 503
        else:
            context["rows"] = [
                _Row(
                    c,
                    _detail_url(admin_site, c.connection_id),
                    _date_and_time(c.connected_at),
                )
                for c in page.connections
            ]
            if page.cursor:
                context["next_url"] = _list_url(admin_site, cursor=page.cursor, **chosen)
    else:
        # The registry lists one tenant at a time (a Query of its index partition), so
        # without one the page offers the tenants rather than scanning the table for a list.
        try:
            context["tenants"] = _tenant_rows(admin_site)
        except RegistryError as exc:
            _report_registry_error(request, exc)
            status = 503
    return _render(request, admin_site, "connection_list.html", context, "Connections", status)


@dataclasses.dataclass(frozen=True, slots=True)
class _Instance:
    fields: dict  # Lease.operator_fields()
    connections_url: str


# --- the tenant summary -----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Type:
    connection_type: str
    total: int
    url: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Deployment:
    deployment_id: str
    total: int
    url: str
    types: list[_Type]


@dataclasses.dataclass(frozen=True, slots=True)
class _Tenant:
    tenant: str
    total: int
    url: str
    deployments: list[_Deployment]


def _tenant_rows(admin_site: AdminSite) -> list[_Tenant]:
    """Every tenant's counts, sorted by name, each level linking to its filtered list.

    Raises:
        RegistryError: from registry.counts().
    """
    rows = []
    for tenant, deployments in sorted(runtime().registry.counts().items()):
        deployment_rows = []
        for deployment, types in sorted(deployments.items()):
            scope = {"tenant": tenant, "deployment_id": deployment}
            type_rows = [
                _Type(kind, n, _list_url(admin_site, **scope, connection_type=kind))
                for kind, n in sorted(types.items())
            ]
            total = sum(t.total for t in type_rows)
            deployment_rows.append(
                _Deployment(deployment, total, _list_url(admin_site, **scope), type_rows)
            )
        total = sum(d.total for d in deployment_rows)
        rows.append(_Tenant(tenant, total, _list_url(admin_site, tenant=tenant), deployment_rows))
    return rows


# --- actions ----------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Outcome:
    done: list[str] = dataclasses.field(default_factory=list)
    gone: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, DeliveryError]] = dataclasses.field(default_factory=list)


def _run_action(request: HttpRequest, data: dict) -> bool:
    """Carry out a validated action on its connections and report it through messages.

    `data` holds `action`, `selected` (ids) and the action's input (`code` or `message`).
    Returns whether every selected connection was reached.
    """
    ids: list[str] = data["selected"]
    action = data["action"]
    if action == _DISCONNECT:
        code = data["code"]
        outcome = async_to_sync(_for_each)(
            ids, lambda cid: delivery.connection_disconnect(cid, code=code)
        )
        done_text = f"Disconnected {_connections(len(outcome.done))} with close code {code}."
        details = {"code": code}
    else:
        payload = data["message"]
        outcome = async_to_sync(_for_each)(ids, lambda cid: delivery.connection_send(cid, payload))
        done_text = f"Sent the message to {_connections(len(outcome.done))}."
        details = {}

    # The audit trail: who did what to which connection (never the message's content).
    user = request.user.get_username()
    results = [(cid, "done") for cid in outcome.done] + [(cid, "gone") for cid in outcome.gone]
    results += [(cid, "failed") for cid, _ in outcome.failed]
    for connection_id, result in results:
        logger.info(
            event(
                f"operator.{action}",
                user=user,
                connection_id=connection_id,
                result=result,
                **details,
            )
        )

    if outcome.done:
        messages.success(request, done_text)
    if outcome.gone:
        gone = ", ".join(outcome.gone)
        messages.warning(request, f"Already gone ({len(outcome.gone)}): {gone}.")
    for connection_id, error in outcome.failed:
        messages.error(request, f"Could not reach {connection_id}: {error}")
    return len(outcome.done) == len(ids)


async def _for_each(ids: list[str], act: Callable[[str], Awaitable[Connection]]) -> _Outcome:
    """Run `act` on every id at once: each may wait DELIVERY_TIMEOUT_SECONDS for its ack."""
    results = await asyncio.gather(*(act(cid) for cid in ids), return_exceptions=True)
    outcome = _Outcome()
    for connection_id, result in zip(ids, results, strict=True):
        if isinstance(result, (ConnectionNotFound, ConnectionGone)):
            outcome.gone.append(connection_id)
        elif isinstance(result, DeliveryError):
            outcome.failed.append((connection_id, result))
        elif isinstance(result, BaseException):
            raise result  # a bug, not a delivery outcome: let Django report it
        else:
            outcome.done.append(connection_id)
    return outcome


# --- helpers ----------------------------------------------------------------------


def _render(
    request: HttpRequest,
    admin_site: AdminSite,
    template: str,
    context: dict,
    title: str,
    status: int = 200,
) -> TemplateResponse:
    request.current_app = admin_site.name
    return TemplateResponse(
        request,
        f"admin/realtime/{template}",
        {**admin_site.each_context(request), "title": title, **context},
        status=status,
    )


def _render_gone(
    request: HttpRequest, admin_site: AdminSite, connection_id: str, *, status: int
) -> TemplateResponse:
    context = {
        "connection_id": connection_id,
        "list_url": _list_url(admin_site),
        "unavailable": status == 503,
    }
    return _render(request, admin_site, "connection_gone.html", context, connection_id, status)


def _list_url(admin_site: AdminSite, **query: str | None) -> str:
    url = reverse("admin:realtime_connections", current_app=admin_site.name)
    given = {name: value for name, value in query.items() if value}
    return f"{url}?{urlencode(given)}" if given else url


def _detail_url(admin_site: AdminSite, connection_id: str) -> str:
    return reverse("admin:realtime_connection", args=[connection_id], current_app=admin_site.name)


def _date_and_time(iso: str) -> tuple[str, str]:
    date, _, time_of_day = iso.partition("T")
    return date, time_of_day


def _connections(n: int) -> str:
    return f"{n} connection" if n == 1 else f"{n} connections"


def _report_registry_error(request: HttpRequest, exc: RegistryError) -> None:
    messages.error(request, f"The connection registry is unavailable, try again later ({exc}).")


def _report_form_errors(request: HttpRequest, form: Form) -> None:
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)
