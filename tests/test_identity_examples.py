"""The server code the Settings page offers (server/admin/identity_examples.py) is correct: each example,
run in its own language with the secret in the environment, yields what the server verifies.

Python runs in-process; Node, PHP and Ruby run when their interpreter is installed (else skipped, saying so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

import pytest

from trailmark.admin.identity_examples import JWT, SECRET_ENV, USER_HASH
from trailmark.identity import user_hash, verify_jwt

SECRET = "s3cr3t-Ωmega_key-long-enough-for-hs256-0123"  # non-ASCII: every language must encode it as UTF-8
USER_ID = "42-ü"

BY_KEY = {e.key: e for e in USER_HASH + JWT}
# How to call each example's function and print the result.
CALLS = {
    "node": ("node", "-e", "\nconsole.log(intercomUserHash({user}));"),
    "php": ("php", "-r", "\necho intercom_user_hash({user}), PHP_EOL;"),
    "ruby": ("ruby", "-e", "\nputs intercom_user_hash({user})"),
    "node-jwt": ("node", "-e", "\nconsole.log(intercomUserJwt({user}));"),
}


def run_example(key: str) -> str:
    program, flag, call = CALLS[key]
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
    code = BY_KEY[key].code
    if program == "php":
        code = code.removeprefix("<?php\n")  # php -r takes code without the opening tag
    literal = '"' + USER_ID + '"'
    done = subprocess.run([program, flag, code + call.format(user=literal)], capture_output=True, text=True,
                          timeout=30, env={**os.environ, SECRET_ENV: SECRET}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def run_python(key: str, function: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    namespace: dict[str, Any] = {}
    exec(BY_KEY[key].code, namespace)
    return namespace[function](USER_ID)


def test_every_user_hash_language_is_offered() -> None:
    assert [e.key for e in USER_HASH] == ["python", "node", "php", "ruby"]
    for example in USER_HASH + JWT:
        assert SECRET_ENV in example.code and SECRET not in example.code


def test_python_user_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_python("python", "intercom_user_hash", monkeypatch) == user_hash(SECRET, USER_ID)


@pytest.mark.parametrize("key", ["node", "php", "ruby"])
def test_user_hash_in_other_languages(key: str) -> None:
    assert run_example(key) == user_hash(SECRET, USER_ID)


def test_python_jwt_is_verified_by_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    claims = verify_jwt([SECRET], run_python("python-jwt", "intercom_user_jwt", monkeypatch))
    assert claims is not None and claims["user_id"] == USER_ID
    assert time.time() + 3500 < claims["exp"] <= time.time() + 3600


def test_node_jwt_is_verified_by_the_server() -> None:
    token = run_example("node-jwt")
    claims = verify_jwt([SECRET], token)
    assert claims is not None and claims["user_id"] == USER_ID and claims["exp"] > time.time() + 3500
    assert verify_jwt(["another secret, just as long as the real one"], token) is None
