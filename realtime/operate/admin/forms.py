"""Forms of the operator pages: every input checked by the rules the server already has.

The pages accept what the management API accepts (operate/api/parse.py), from the same
helpers:
- tenant, deployment_id and connection_type follow the handshake's value rule
  (`handshake.is_valid_value`);
- connection ids are canonical uuid4 strings (`connection.is_connection_id`): anything else
  was never issued;
- a message is any JSON value parsed as client frames are (`protocol.parse_json`), at most
  WS_MAX_MESSAGE_BYTES once encoded, and carried by every channel layer;
- a close code is in the range RFC 6455 leaves to applications, 4000-4999.
"""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from realtime.core import close_codes, protocol
from realtime.core.connection import is_connection_id
from realtime.core.handshake import MAX_VALUE_LENGTH, VALUE_RULE, is_valid_value
from realtime.core.leases import is_instance_id

__all__ = [
    "MAX_SELECTED",
    "ConnectionActionForm",
    "ConnectionFilterForm",
    "ConnectionSearchForm",
    "DisconnectForm",
    "MessageForm",
    "parse_message",
]

# One page of the list (views.PAGE_SIZE): an action never fans out to more than this.
MAX_SELECTED = 100
_SEARCH_MAX_LENGTH = 128  # ids are 36 characters; a bound on what the page echoes back
_CURSOR_MAX_LENGTH = 4096  # as the API's
_CLOSE_CODE_MIN, _CLOSE_CODE_MAX = 4000, 4999


def parse_message(text: str):
    """The JSON value an operator typed, ready for `delivery.connection_send`.

    Raises:
        ValidationError: not JSON by the protocol's rules, over WS_MAX_MESSAGE_BYTES once
            encoded, or holding what the channel layer cannot carry.
    """
    try:
        data = protocol.parse_json(text)
    except protocol.InvalidJson as exc:
        raise ValidationError(str(exc), code="invalid_json") from None
    try:
        protocol.check_outgoing(data, max_bytes=settings.WS_MAX_MESSAGE_BYTES)
    except protocol.UnsendableData as exc:
        suffix = " (WS_MAX_MESSAGE_BYTES)" if exc.code == "message_too_big" else ""
        raise ValidationError(f"the message {exc.detail}{suffix}", code=exc.code) from None
    return data


class HandshakeValueField(forms.CharField):
    """An optional tenant, deployment_id or connection_type, held to the handshake's rule."""

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=MAX_VALUE_LENGTH, **kwargs)

    def validate(self, value: str) -> None:
        super().validate(value)
        if value and not is_valid_value(value):
            raise ValidationError(f"Enter {VALUE_RULE}.", code="invalid")


class ConnectionIdsField(forms.Field):
    """The connection ids ticked in the list: at least one, at most MAX_SELECTED, no repeats."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Select at least one connection.",
        "invalid": "Not a connection id.",
        "too_many": f"Select at most {MAX_SELECTED} connections.",
    }

    def to_python(self, value) -> list[str]:
        if not value:
            return []
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, str) and is_connection_id(v) for v in value
        ):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        ids = list(dict.fromkeys(value))
        if len(ids) > MAX_SELECTED:
            raise ValidationError(self.error_messages["too_many"], code="too_many")
        return ids


class ConnectionSearchForm(forms.Form):
    q = forms.CharField(label="Connection id", required=False, max_length=_SEARCH_MAX_LENGTH)


def _instance_id(value: str) -> None:
    if not is_instance_id(value):
        raise ValidationError("Instance ids are printable ASCII without spaces.")


class ConnectionFilterForm(forms.Form):
    """The list's filters, in the order the tenant index narrows: tenant, deployment, type;
    or one server instance (the instance index)."""

    tenant = HandshakeValueField(label="Tenant")
    deployment_id = HandshakeValueField(label="Deployment")
    connection_type = HandshakeValueField(label="Connection type")
    instance_id = forms.CharField(
        label="Instance",
        required=False,
        max_length=256,
        validators=[_instance_id],
        help_text="Every connection one server instance holds (instead of a tenant).",
    )
    cursor = forms.CharField(
        required=False, max_length=_CURSOR_MAX_LENGTH, widget=forms.HiddenInput
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        # The index's sort key is deployment#type#id: a type can only narrow a deployment,
        # and everything narrows a tenant (its partition key).
        if cleaned.get("connection_type") and not cleaned.get("deployment_id"):
            self.add_error("connection_type", "Filter by a deployment to filter by type.")
        if cleaned.get("deployment_id") and not cleaned.get("tenant"):
            self.add_error("deployment_id", "Filter by a tenant to filter by deployment.")
        if cleaned.get("instance_id") and cleaned.get("tenant"):
            self.add_error("instance_id", "List by tenant or by instance, not both.")
        return cleaned


class MessageForm(forms.Form):
    message = forms.CharField(
        label="Message",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "placeholder": '{"text": "hello"}'}),
        help_text="Any JSON value; the client receives it as "
        '<code>{"type": "message", "data": ...}</code>.',
    )

    def clean_message(self):
        return parse_message(self.cleaned_data["message"])


class DisconnectForm(forms.Form):
    code = forms.IntegerField(
        label="Close code",
        required=False,
        min_value=_CLOSE_CODE_MIN,
        max_value=_CLOSE_CODE_MAX,
        widget=forms.NumberInput(attrs={"placeholder": str(close_codes.CLOSED_BY_OPERATOR)}),
        help_text=f"{_CLOSE_CODE_MIN}-{_CLOSE_CODE_MAX}; "
        f"{close_codes.CLOSED_BY_OPERATOR} when left empty.",
    )

    def clean_code(self) -> int:
        code = self.cleaned_data["code"]
        return close_codes.CLOSED_BY_OPERATOR if code is None else code


class ConnectionActionForm(DisconnectForm):
    """The list's action bar: an action, its input, and the ticked connections."""

    DISCONNECT = "disconnect"
    SEND = "send"

    action = forms.ChoiceField(
        label="Action",
        choices=[
            ("", "---------"),
            (DISCONNECT, "Disconnect selected"),
            (SEND, "Send message to selected"),
        ],
    )
    message = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 1, "cols": 40, "placeholder": '{"text": "hello"}'}),
    )
    selected = ConnectionIdsField()

    field_order = ["action", "code", "message", "selected"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("action") == self.SEND and "message" in cleaned:
            if not cleaned["message"]:
                self.add_error("message", "Enter the JSON value to send.")
            else:
                try:
                    cleaned["message"] = parse_message(cleaned["message"])
                except ValidationError as exc:
                    self.add_error("message", exc)
        return cleaned
