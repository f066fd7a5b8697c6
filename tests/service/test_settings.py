import subprocess
import sys

import pytest
from pydantic import ValidationError

from service.settings import describe_error, get_settings


def test_nested_crm_settings_come_from_truce_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUCE_SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
    monkeypatch.setenv("TRUCE_SALESFORCE_ACCESS_TOKEN", "00Dxx!token")
    monkeypatch.setenv("TRUCE_HUBSPOT_ACCESS_TOKEN", "pat-na1-xyz")
    monkeypatch.setenv("TRUCE_SYNC_INTERVAL_SECONDS", "60")
    s = get_settings(_env_file=None)
    assert s.salesforce.instance_url == "https://acme.my.salesforce.com"
    assert s.salesforce.access_token is not None
    assert "00Dxx" not in repr(s)  # secrets never printed
    assert s.enabled_sources() == ["salesforce", "hubspot"]
    assert s.sync_interval_seconds == 60


def test_a_postgresql_url_is_routed_through_psycopg() -> None:
    s = get_settings(database_url="postgresql://u@h/db", _env_file=None)
    assert s.database_url == "postgresql+psycopg://u@h/db"


def test_malformed_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUCE_SYNC_INTERVAL_SECONDS", "often")
    with pytest.raises(ValidationError) as err:
        get_settings(_env_file=None)
    assert "TRUCE_SYNC_INTERVAL_SECONDS" in describe_error(err.value)


def test_cli_prints_a_clear_message_not_a_traceback(tmp_path) -> None:  # noqa: ANN001
    env = {"TRUCE_DATABASE_URL": "mysql://nope", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "service.cli", "db", "upgrade"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "TRUCE_DATABASE_URL" in out.stderr
    assert "Traceback" not in out.stderr
