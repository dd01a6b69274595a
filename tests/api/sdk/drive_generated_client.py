"""Drives the Channels API through the client that openapi-python-client generated from
/api/openapi.json, as an integrator would. Run by tests/api/test_generated_client.py with the
tool's own Python (``CHANNELS_URL``, ``CHANNELS_KEY`` in the environment, the generated package
on the path); prints one JSON line of what it saw, and fails on the first surprise."""

from __future__ import annotations

import json
import os
import sys
from http import HTTPStatus

from channels_api_client import AuthenticatedClient
from channels_api_client.api.channels import (
    create_channel,
    delete_channel,
    get_channel,
    list_channels,
    update_channel,
)
from channels_api_client.api.email_domains import create_email_domain
from channels_api_client.api.integrations import create_integration
from channels_api_client.api.phone_numbers import create_phone_number
from channels_api_client.models import (
    ChannelUpdate,
    EmailChannel,
    EmailChannelCreate,
    EmailDomain,
    EmailDomainCreate,
    Error,
    IntegrationConsole,
    IntegrationConsoleCreate,
    IntegrationConsoleCreateChannelType,
    PhoneNumber,
    PhoneNumberCreate,
    SmsChannel,
    SmsChannelCreate,
)


def expect(condition: bool, what: str) -> None:
    if not condition:
        print(f"UNEXPECTED: {what}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    client = AuthenticatedClient(
        base_url=os.environ["CHANNELS_URL"], token=os.environ["CHANNELS_KEY"]
    )
    seen: dict = {}
    with client:
        made = {}
        for kind in ("sms", "email"):
            response = create_integration.sync_detailed(
                client=client,
                body=IntegrationConsoleCreate(
                    name=f"Console {kind}",
                    channel_type=IntegrationConsoleCreateChannelType(kind),
                    provider="console",
                ),
            )
            expect(response.status_code == HTTPStatus.CREATED, f"integration {response.content!r}")
            expect(isinstance(response.parsed, IntegrationConsole), "an IntegrationConsole")
            made[kind] = response.parsed
        number = create_phone_number.sync_detailed(
            client=client,
            body=PhoneNumberCreate(
                phone_number="+15551234567",
                integration_id=str(made["sms"].id),
                create_channel=False,
            ),
        )
        expect(number.status_code == HTTPStatus.CREATED, f"number {number.content!r}")
        expect(isinstance(number.parsed, PhoneNumber), "a PhoneNumber")
        domain = create_email_domain.sync_detailed(
            client=client, body=EmailDomainCreate(domain="mail.example.org")
        )
        expect(domain.status_code == HTTPStatus.CREATED, f"domain {domain.content!r}")
        expect(isinstance(domain.parsed, EmailDomain), "an EmailDomain")

        sms = create_channel.sync_detailed(
            client=client,
            body=SmsChannelCreate(
                name="SDK SMS",
                channel_type="sms",
                integration_id=str(made["sms"].id),
                send_from_phone_number="+15551234567",
                phone_number_id=number.parsed.id,
            ),
        )
        expect(sms.status_code == HTTPStatus.CREATED, f"sms channel {sms.content!r}")
        expect(isinstance(sms.parsed, SmsChannel), "an SmsChannel")
        email = create_channel.sync_detailed(
            client=client,
            body=EmailChannelCreate(
                name="SDK Email",
                channel_type="email",
                integration_id=str(made["email"].id),
                send_from_email="hello@mail.example.org",
                email_domain_id=domain.parsed.id,
            ),
        )
        expect(email.status_code == HTTPStatus.CREATED, f"email channel {email.content!r}")
        expect(isinstance(email.parsed, EmailChannel), "an EmailChannel")
        seen["statuses"] = {"sms": str(sms.parsed.status), "email": str(email.parsed.status)}

        first = list_channels.sync_detailed(client=client, limit=1)
        expect(first.status_code == HTTPStatus.OK, "first page")
        expect(first.parsed.next_cursor is not None, "a next_cursor after one of two")
        second = list_channels.sync_detailed(
            client=client, limit=1, cursor=first.parsed.next_cursor
        )
        expect(second.status_code == HTTPStatus.OK, "second page")
        seen["pages"] = [[c.name for c in page.parsed.data] for page in (first, second)]
        seen["last_cursor"] = second.parsed.next_cursor

        renamed = update_channel.sync_detailed(
            str(sms.parsed.id), client=client, body=ChannelUpdate(name="SDK SMS renamed")
        )
        expect(renamed.status_code == HTTPStatus.OK, f"patch {renamed.content!r}")
        seen["renamed"] = renamed.parsed.name

        refused = create_channel.sync_detailed(
            client=client,
            body=SmsChannelCreate(
                name="SDK refused",
                channel_type="sms",
                integration_id=str(made["sms"].id),
                send_from_phone_number="+99912345678",
                phone_number_id=number.parsed.id,
            ),
        )
        expect(refused.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, "a 422")
        expect(isinstance(refused.parsed, Error), "the 422 parsed into Error")
        seen["error"] = {
            "code": refused.parsed.error.code,
            "fields": refused.parsed.error.fields.to_dict(),
        }

        deleted = delete_channel.sync_detailed(str(email.parsed.id), client=client)
        expect(deleted.status_code == HTTPStatus.NO_CONTENT, "delete")
        gone = get_channel.sync_detailed(str(email.parsed.id), client=client)
        expect(gone.status_code == HTTPStatus.NOT_FOUND, "deleted channel is 404")
        expect(isinstance(gone.parsed, Error), "the 404 parsed into Error")
        seen["after_delete"] = gone.parsed.error.code
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
