"""Airflow's own authentication under a test JWT secret, for tests of code that runs on
the API server (kaizen.params_guard, kaizen.ui): the SimpleAuthManager with an admin and
a viewer, and real tokens made by its signer — valid, expired, and forged (signed with
another secret)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

SECRET = "kaizen-test-secret-" + "x" * 64  # ≥ 64 bytes: HS512 wants a key that long
USERS = "admin:admin,vic:viewer"


@contextmanager
def simple_auth(tmp: Path):
    """Set the auth settings, make a fresh auth manager and yield ``{"manager", "admin",
    "viewer", "expired", "forged"}``; everything is put back afterwards. The generated
    passwords go to ``tmp``, never to the shared AIRFLOW_HOME."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", SECRET)
    mp.setenv("AIRFLOW__CORE__AUTH_MANAGER",
              "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", USERS)
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp / "passwords.json"))
    from airflow.api_fastapi import app as api_app
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.auth.tokens import JWTGenerator

    def forget():
        BaseAuthManager._get_token_validator.__func__.cache_clear()  # a validator reads the secret once
        api_app.purge_cached_app()

    forget()
    try:
        am = api_app.create_auth_manager()
        admin = SimpleAuthManagerUser(username="admin", role="admin")
        forged = JWTGenerator(secret_key="another-secret-" + "y" * 64, valid_for=600,
                              audience=am._get_jwt_audience()).generate(am.serialize_user(admin))
        yield {
            "manager": am,
            "admin": am.generate_jwt(admin),
            "viewer": am.generate_jwt(SimpleAuthManagerUser(username="vic", role="viewer")),
            "expired": am.generate_jwt(admin, expiration_time_in_seconds=-3600),
            "forged": forged,
        }
    finally:
        forget()
        mp.undo()
