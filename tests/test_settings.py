"""Politeness and safety defaults, and RSARCHIVE_* keys read from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

_SHOW = (
    "import json; from scrapy.utils.project import get_project_settings as g; s = g(); "
    "print(json.dumps({k: s.get(k) for k in ["
    "'RSARCHIVE_DATABASE_URL', 'RSARCHIVE_SITE_URL', 'RSARCHIVE_FEED_MAX_PAGES', 'USER_AGENT', "
    "'ROBOTSTXT_OBEY', 'COOKIES_ENABLED', 'TELNETCONSOLE_ENABLED', 'REMOTE_CONTROL_ENABLED', "
    "'AUTOTHROTTLE_ENABLED', 'DOWNLOAD_DELAY', 'DOWNLOAD_TIMEOUT', 'DOWNLOAD_MAXSIZE']}))"
)


def settings_with(env: dict[str, str]) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RSARCHIVE_")}
    proc = subprocess.run(
        [sys.executable, "-c", _SHOW],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(proc.stdout)


def test_defaults_are_polite_and_safe():
    s = settings_with({})
    assert s["RSARCHIVE_DATABASE_URL"] == "sqlite:///rsarchive.db"
    assert s["RSARCHIVE_SITE_URL"] == "https://responsiblestatecraft.org"
    assert s["ROBOTSTXT_OBEY"] is True
    assert s["COOKIES_ENABLED"] is False
    assert s["TELNETCONSOLE_ENABLED"] is False
    assert s["REMOTE_CONTROL_ENABLED"] is False
    assert s["AUTOTHROTTLE_ENABLED"] is True
    assert s["DOWNLOAD_DELAY"] >= 1
    assert 10 <= s["DOWNLOAD_TIMEOUT"] <= 60
    assert s["DOWNLOAD_MAXSIZE"] == 16 * 1024 * 1024
    assert s["USER_AGENT"].startswith("rsarchive/") and "+https://" in s["USER_AGENT"]


def test_rsarchive_keys_come_from_the_environment():
    s = settings_with(
        {
            "RSARCHIVE_DATABASE_URL": "sqlite:////srv/rs.db",
            "RSARCHIVE_SITE_URL": "http://127.0.0.1:8080",
            "RSARCHIVE_FEED_MAX_PAGES": "5",
            "RSARCHIVE_CONTACT": "mailto:archivist@example.org",
        }
    )
    assert s["RSARCHIVE_DATABASE_URL"] == "sqlite:////srv/rs.db"
    assert s["RSARCHIVE_SITE_URL"] == "http://127.0.0.1:8080"
    # Kept as given: the spider parses it (Settings.getint), naming the key if it cannot.
    assert s["RSARCHIVE_FEED_MAX_PAGES"] == "5"
    assert "mailto:archivist@example.org" in s["USER_AGENT"]


def test_a_bad_number_in_the_environment_does_not_break_loading_the_settings():
    s = settings_with({"RSARCHIVE_FEED_MAX_PAGES": "many", "RSARCHIVE_RETRY_AFTER_MAX": "x"})
    assert s["RSARCHIVE_FEED_MAX_PAGES"] == "many"
    assert s["RSARCHIVE_SITE_URL"] == "https://responsiblestatecraft.org"


def test_numeric_defaults_live_in_the_settings_module_only():
    from scrapy.settings import Settings

    from rsarchive.config import get_float, get_int

    settings = Settings()
    settings.setmodule("rsarchive.settings")
    assert get_int(settings, "RSARCHIVE_FEED_MAX_PAGES") == 20
    assert get_float(settings, "RSARCHIVE_FEED_RECHECK_HOURS") == 24.0
    assert get_int(settings, "RSARCHIVE_FOLLOW_MAX") == 100
