"""The operator's commands: tokens, erasure, keys, and refusing to start insecurely."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from uuid import UUID

import jwt
import pytest

from config.settings import DEV_MASTER_KEY, Settings
from security.tokens import DEV_SECRET
from service import build_cases
from tests.factories import CLERK, migrated, registration
from tests.serving import MINQING, environment


def minqing(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MINQING, *args], env=env, capture_output=True, text=True, timeout=60)


def dev_env(tmp_path: Path) -> dict[str, str]:
    env = environment(Settings(sqlite_path=tmp_path / "m.sqlite3"))
    for key in ("MINQING_JWT_SECRET", "MINQING_MASTER_KEY", "MINQING_ENV"):
        env.pop(key, None)
    return env


def test_token_issue_prints_a_signed_token_with_the_claims(tmp_path: Path) -> None:
    env = dev_env(tmp_path)
    done = minqing("token", "issue", "--role", "grid_leader", "--sub", "GL0001", "--ttl", "60", env=env)
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), DEV_SECRET, algorithms=["HS256"], issuer="minqing")
    assert (
        claims["role"] == "grid_leader"
        and claims["grids"] == ["35010500100101"]
        and claims["exp"] - claims["iat"] == 60
    )
    assert "development secret" in done.stderr
    refused = minqing("token", "issue", "--role", "resident", env=env)
    assert refused.returncode != 0 and "--case" in refused.stderr
    with_secret = {**env, "MINQING_JWT_SECRET": "s" * 40}
    township = minqing("token", "issue", "--role", "township", "--unit", "350105001", env=with_secret)
    assert jwt.decode(township.stdout.strip(), "s" * 40, algorithms=["HS256"], issuer="minqing")["unit"] == "350105001"
    dev = minqing("token", "dev", env=env)
    assert dev.returncode == 0 and len(dev.stdout.splitlines()) == 9
    assert minqing("token", "dev", env=with_secret).returncode != 0


def test_production_serve_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    done = minqing("serve", "--port", "1", env={**dev_env(tmp_path), "MINQING_ENV": "production"})
    assert done.returncode == 2 and "MINQING_JWT_SECRET" in done.stderr and "MINQING_MASTER_KEY" in done.stderr


GOOD_SECRETS = {"MINQING_JWT_SECRET": "s" * 40, "MINQING_MASTER_KEY": base64.b64encode(b"m" * 32).decode()}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"MINQING_ENV": "production", "MINQING_JWT_SECRET": DEV_SECRET}, "development secret"),
        ({"MINQING_ENV": "production", "MINQING_MASTER_KEY": DEV_MASTER_KEY}, "development key"),
        ({"MINQING_ENV": "prd"}, "MINQING_ENV='prd' is unknown"),
        ({"MINQING_ENV": "staging"}, "MINQING_ENV='staging' is unknown"),
        ({"MINQING_JWT_ALGORITHM": "HS256", "MINQING_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nx\n"}, "HS256"),
        ({"MINQING_JWT_ALGORITHM": "RS256"}, "needs MINQING_JWT_PUBLIC_KEY"),
    ],
)
def test_serve_refuses_published_or_misspelt_configuration(tmp_path: Path, extra: dict[str, str], says: str) -> None:
    # With proper secrets everywhere else, so that only the one bad setting can be the reason.
    done = minqing("serve", "--port", "1", env={**dev_env(tmp_path), **GOOD_SECRETS, **extra})
    assert done.returncode == 2 and says in done.stderr, done.stderr


def test_workers_refuse_the_development_master_key_in_production(tmp_path: Path) -> None:
    env = {**dev_env(tmp_path), **GOOD_SECRETS, "MINQING_ENV": "production", "MINQING_MASTER_KEY": DEV_MASTER_KEY}
    for command in (["project", "--once"], ["erase", "P" + "0" * 32]):
        done = minqing(*command, env=env)
        assert done.returncode != 0 and "development key" in done.stderr, (command, done.stderr)


def test_keys_new_and_erase_from_the_command_line(tmp_path: Path) -> None:
    env = dev_env(tmp_path)
    key = minqing("keys", "new", env=env).stdout.strip()
    assert len(base64.b64decode(key)) == 32
    cases = build_cases(migrated(Settings(sqlite_path=tmp_path / "m.sqlite3")))
    try:
        case_id = cases.register(CLERK, **registration()).case_id
        person = cases.get_case(UUID(case_id)).petitioner["person"]
    finally:
        cases.close()
    done = minqing("erase", person, env=env)
    assert done.returncode == 0 and "'key_destroyed': True" in done.stdout, done.stderr
    assert minqing("erase", "P" + "0" * 32, env=env).returncode == 1
