"""The seed flow through a client generated from the server's own /openapi.json by
openapi-python-client: typed models in, typed models out, nothing written by hand but this.

    python generated_client.py '{"generated": DIR}'   (DIR holding the generated m2m_client, with
        FRONTEGG_API_GATEWAY_URL, FRONTEGG_CLIENT_ID and FRONTEGG_API_KEY set, as for the SDKs)

Prints one JSON line: what each step answered, for tests/api/typed_clients.rs to check.
"""

import base64
import json
import os
import sys

sys.path.insert(0, json.loads(sys.argv[1])["generated"])

from m2m_client import AuthenticatedClient, Client  # noqa: E402
from m2m_client.api.auth import authenticate_vendor  # noqa: E402
from m2m_client.api.directory import (  # noqa: E402
    create_permission,
    create_role,
    create_tenant_frontegg,
    create_user_in_tenant,
    delete_tenant_frontegg,
    get_user,
    list_users,
)
from m2m_client.api.exchange import exchange_v1, refresh_v1  # noqa: E402
from m2m_client.api.tenant_tokens import (  # noqa: E402
    create_tenant_token_v1,
    list_tenant_tokens,
)
from m2m_client.api.user_tokens import create_user_token  # noqa: E402
from m2m_client.models import (  # noqa: E402
    CreateTenantFronteggBody,
    CreateUserInTenantBody,
    Credentials,
    NewTenantToken,
    NewUserToken,
    PermissionInput,
    RefreshRequest,
    RoleInput,
)

base = os.environ["FRONTEGG_API_GATEWAY_URL"]
steps = {}


def step(name, response, want):
    """Records the status, and fails loudly if it is not `want`: the parsed model follows."""
    steps[name] = response.status_code.value
    if response.status_code.value != want:
        raise SystemExit(f"{name}: {response.status_code} {response.content!r}")
    return response.parsed


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


anyone = Client(base_url=base, raise_on_unexpected_status=True)
credentials = Credentials(client_id=os.environ["FRONTEGG_CLIENT_ID"], secret=os.environ["FRONTEGG_API_KEY"])
vendor_token = step("vendor", authenticate_vendor.sync_detailed(client=anyone, body=credentials), 200)
vendor = AuthenticatedClient(base_url=base, token=vendor_token.token, raise_on_unexpected_status=True)

permission = step(
    "permission",
    create_permission.sync_detailed(client=vendor, body=PermissionInput(key="reports.read", name="Read reports")),
    201,
)
role = step(
    "role",
    create_role.sync_detailed(client=vendor, body=RoleInput(key="viewer", permission_ids=[permission.id])),
    201,
)
tenant = step(
    "tenant",
    create_tenant_frontegg.sync_detailed(client=vendor, body=CreateTenantFronteggBody(tenant_id="acme", name="Acme")),
    201,
)
user = step(
    "user",
    create_user_in_tenant.sync_detailed(
        client=vendor,
        frontegg_tenant_id="acme",
        body=CreateUserInTenantBody(email="alice@acme.test", name="Alice", role_ids=[role.id]),
    ),
    201,
)
read = step("read_user", get_user.sync_detailed(user.id, client=vendor), 200)
page = step("list_users", list_users.sync_detailed(client=vendor, field_limit=10, frontegg_tenant_id="acme"), 200)

bot = step(
    "tenant_token",
    create_tenant_token_v1.sync_detailed(
        client=vendor, frontegg_tenant_id="acme", body=NewTenantToken(description="deploy bot", role_ids=[role.id])
    ),
    201,
)
laptop = step(
    "user_token",
    create_user_token.sync_detailed(
        client=vendor, frontegg_tenant_id="acme", frontegg_user_id=user.id, body=NewUserToken(description="laptop")
    ),
    201,
)
issued = step(
    "exchange",
    exchange_v1.sync_detailed(client=anyone, body=Credentials(client_id=bot.client_id, secret=bot.secret)),
    200,
)
personal = step(
    "personal_exchange",
    exchange_v1.sync_detailed(client=anyone, body=Credentials(client_id=laptop.client_id, secret=laptop.secret)),
    200,
)
renewed = step(
    "refresh",
    refresh_v1.sync_detailed(client=anyone, body=RefreshRequest(refresh_token=issued.refresh_token)),
    200,
)
listed = step("list_tokens", list_tenant_tokens.sync_detailed(client=vendor, frontegg_tenant_id="acme"), 200)
step("delete_tenant", delete_tenant_frontegg.sync_detailed("acme", client=vendor), 204)
after = exchange_v1.sync_detailed(client=anyone, body=Credentials(client_id=bot.client_id, secret=bot.secret))

print(
    json.dumps(
        {
            "steps": steps,
            "tenant": {"tenantId": tenant.tenant_id, "createdAt": tenant.created_at.isoformat()},
            "user": {"roles": [r.key for r in user.roles], "permissions": [p.key for p in user.permissions]},
            "readTenants": [m.tenant_id for m in read.tenants],
            "listed": {"items": len(page.items), "totalPages": page.field_metadata.total_pages},
            "tenantClaims": {k: claims(issued.access_token).get(k) for k in ("type", "tenantId", "roles", "permissions")},
            "personalClaims": {k: claims(personal.access_token).get(k) for k in ("type", "userId", "roles")},
            "refreshed": claims(renewed.access_token)["sub"] == str(bot.client_id),
            "tokens": [str(t.client_id) for t in listed],
            "afterDelete": after.status_code.value,
        }
    )
)
