"""Server code that proves who a signed-in user is, for the Settings page to copy from.

``user_hash`` is the hex HMAC-SHA256 of the ``user_id`` keyed by the identity secret (server/identity.py);
``intercom_user_jwt`` is an HS256 JWT with the claims ``user_id`` and ``exp``. The examples read the secret
from the environment variable :data:`SECRET_ENV`, never from the page: the secret stays on the customer's
server. tests/test_identity_examples.py runs each one and checks it against the server's own verification.
"""

from __future__ import annotations

from dataclasses import dataclass

SECRET_ENV = "TRAILMARK_IDENTITY_SECRET"


@dataclass(frozen=True)
class Example:
    key: str  # stable id (tests, anchors)
    language: str
    code: str


USER_HASH = [
    Example("python", "Python", f'''import hashlib
import hmac
import os


def intercom_user_hash(user_id: str) -> str:
    secret = os.environ["{SECRET_ENV}"]
    return hmac.new(secret.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()
'''),
    Example("node", "Node.js", f'''const crypto = require('node:crypto');

function intercomUserHash(userId) {{
  return crypto.createHmac('sha256', process.env.{SECRET_ENV})
    .update(String(userId))
    .digest('hex');
}}
'''),
    Example("php", "PHP", f'''<?php
function intercom_user_hash(string $userId): string
{{
    return hash_hmac('sha256', $userId, getenv('{SECRET_ENV}'));
}}
'''),
    Example("ruby", "Ruby", f'''require 'openssl'

def intercom_user_hash(user_id)
  OpenSSL::HMAC.hexdigest('SHA256', ENV.fetch('{SECRET_ENV}'), user_id.to_s)
end
'''),
]

JWT = [
    Example("python-jwt", "Python (standard library)", f'''import base64
import hashlib
import hmac
import json
import os
import time


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def intercom_user_jwt(user_id: str, lifetime: int = 3600) -> str:
    secret = os.environ["{SECRET_ENV}"].encode()
    header = _b64url(json.dumps({{"alg": "HS256", "typ": "JWT"}}).encode())
    claims = _b64url(json.dumps({{"user_id": str(user_id), "exp": int(time.time()) + lifetime}}).encode())
    signature = hmac.new(secret, f"{{header}}.{{claims}}".encode(), hashlib.sha256).digest()
    return f"{{header}}.{{claims}}.{{_b64url(signature)}}"
'''),
    Example("node-jwt", "Node.js (no dependency)", f'''const crypto = require('node:crypto');

function intercomUserJwt(userId, lifetimeSeconds = 3600) {{
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
  const header = part({{ alg: 'HS256', typ: 'JWT' }});
  const claims = part({{ user_id: String(userId), exp: Math.floor(Date.now() / 1000) + lifetimeSeconds }});
  const signature = crypto.createHmac('sha256', process.env.{SECRET_ENV})
    .update(header + '.' + claims)
    .digest('base64url');
  return header + '.' + claims + '.' + signature;
}}
'''),
]


def boot_example(app_id: str) -> str:
    """What the page then runs (the value comes from the customer's server, rendered into the page)."""
    return (f"Intercom('boot', {{\n  app_id: '{app_id}',\n  user_id: '42',\n"
            "  user_hash: '<intercom_user_hash(\"42\") from your server>',\n"
            "  // or: intercom_user_jwt: '<intercom_user_jwt(\"42\") from your server>',\n});\n")
