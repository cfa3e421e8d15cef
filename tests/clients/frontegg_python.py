"""Frontegg's Python SDK and its FastAPI integration against m2m-auth.

Configured through the environment (FRONTEGG_API_GATEWAY_URL, FRONTEGG_CLIENT_ID,
FRONTEGG_API_KEY). argv[1] is JSON: [{"name", "token", "permissions"?}]. Each token is sent to a
FastAPI route guarded by FronteggSecurity(permissions=...); prints {name: {status, body}}.
"""
import json
import os
import sys
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from frontegg.fastapi import frontegg
from frontegg.fastapi.secure_access import FronteggSecurity, User


@asynccontextmanager
async def lifespan(_app):
    await frontegg.init_app(os.environ["FRONTEGG_CLIENT_ID"], os.environ["FRONTEGG_API_KEY"])
    yield


app = FastAPI(lifespan=lifespan)


def describe(user: User):
    return {"sub": user.sub, "tenantId": user.tenant_id, "type": user.token_type.value,
            "applicationId": user.application_id, "permissions": user.permissions}


@app.get("/any")
def any_token(user: User = Depends(FronteggSecurity())):
    return describe(user)


@app.get("/reports")
def reports(user: User = Depends(FronteggSecurity(permissions=["reports.read"]))):
    return describe(user)


results = {}
with TestClient(app) as client:
    for case in json.loads(sys.argv[1]):
        path = "/reports" if case.get("permissions") else "/any"
        response = client.get(path, headers={"Authorization": f"Bearer {case['token']}"})
        results[case["name"]] = {"status": response.status_code, "body": response.json()}
print(json.dumps(results))
