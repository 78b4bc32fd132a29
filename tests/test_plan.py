"""Alias planning and the merge into DATABASES / django.db.connections."""

import pytest
from django.db.utils import ConnectionHandler

from django_appdb.databases import merge, plan
from django_appdb.exceptions import AppDatabaseConfigError
from django_appdb.testing.guard import colliding_test_databases


@pytest.fixture
def databases(tmp_path):
    return {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "default.db")},
        "reporting": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "reports",
            "HOST": "db.internal",
            "PORT": "5432",
            "USER": "ro",
            "PASSWORD": "s3cret",
        },
    }


def aliases(result):
    return {label: record.alias for label, record in result.records.items()}


def test_apps_without_configuration_use_default(make_app, databases):
    result = plan([make_app("a"), make_app("b")], databases, environ={})
    assert aliases(result) == {"a": "default", "b": "default"}
    assert result.new_databases == {}
    assert result.records["a"].source == "default"


def test_app_with_its_own_url_gets_its_label_as_alias(make_app, databases, tmp_path):
    app = make_app("billing", f'DATABASE_URL = "sqlite:///{tmp_path}/billing.db"\n')
    result = plan([app], databases, environ={})
    assert aliases(result) == {"billing": "billing"}
    assert result.new_databases["billing"]["NAME"] == f"{tmp_path}/billing.db"
    assert result.records["billing"].source == f"{app.name}.database"


def test_url_equal_to_default_uses_default_alias(make_app, databases, tmp_path):
    result = plan([make_app("x")], databases, environ={"X_DATABASE_URL": f"sqlite:///{tmp_path}/default.db"})
    assert aliases(result) == {"x": "default"}
    assert result.new_databases == {}


def test_apps_sharing_a_url_share_one_alias(make_app, databases):
    url = "postgres://app:pw@db.internal/shop"
    result = plan(
        [make_app("orders"), make_app("billing")],
        databases,
        environ={"ORDERS_DATABASE_URL": url, "BILLING_DATABASE_URL": url},
    )
    assert aliases(result) == {"orders": "orders", "billing": "orders"}
    assert list(result.new_databases) == ["orders"]


def test_settings_alias_for_the_same_database_is_reused(make_app, databases):
    # Same server, port spelled out in one and implied in the other.
    result = plan(
        [make_app("stats")], databases, environ={"STATS_DATABASE_URL": "postgres://ro:s3cret@DB.internal:5432/reports"}
    )
    assert aliases(result) == {"stats": "reporting"}
    assert result.new_databases == {}


def test_database_alias_reuses_a_settings_alias(make_app, databases):
    app = make_app("stats", 'DATABASE_ALIAS = "reporting"\n')
    result = plan([app], databases, environ={})
    assert aliases(result) == {"stats": "reporting"}
    assert result.records["stats"].settings is databases["reporting"]


def test_database_alias_names_a_new_shared_alias(make_app, databases, tmp_path):
    body = f'DATABASE_URL = "sqlite:///{tmp_path}/wh.db"\nDATABASE_ALIAS = "warehouse"\n'
    result = plan([make_app("a", body), make_app("b", 'DATABASE_ALIAS = "warehouse"\n')], databases, environ={})
    assert aliases(result) == {"a": "warehouse", "b": "warehouse"}
    assert list(result.new_databases) == ["warehouse"]


def test_module_options_reach_the_settings(make_app, databases, tmp_path):
    body = (
        f'DATABASE_URL = "sqlite:///{tmp_path}/o.db"\n'
        'DATABASE_OPTIONS = {"timeout": 7}\nCONN_MAX_AGE = None\nCONN_HEALTH_CHECKS = True\n'
        'DATABASE_TEST = {"NAME": "/tmp/test_o.db"}\nSQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 3}\n'
    )
    result = plan([make_app("o", body)], databases, environ={})
    cfg = result.new_databases["o"]
    assert cfg["OPTIONS"] == {"timeout": 7}
    assert cfg["CONN_MAX_AGE"] is None
    assert cfg["CONN_HEALTH_CHECKS"] is True
    assert cfg["TEST"] == {"NAME": "/tmp/test_o.db"}
    assert result.records["o"].engine_options == {"pool_size": 3}


def test_url_query_options_and_module_options_merge(make_app, databases):
    body = 'DATABASE_URL = "postgres://u@h/q?sslmode=require"\nDATABASE_OPTIONS = {"connect_timeout": 3}\n'
    app = make_app("q", body)
    result = plan([app], databases, environ={})
    assert result.new_databases["q"]["OPTIONS"] == {"sslmode": "require", "connect_timeout": 3}


def test_record_repr_and_masked_url_hide_the_password(make_app, databases):
    result = plan([make_app("p")], databases, environ={"P_DATABASE_URL": "postgres://u:hunter2@h/p"})
    record = result.records["p"]
    assert record.url == "postgres://u:hunter2@h/p"
    assert "hunter2" not in repr(record)
    assert "hunter2" not in record.masked_url
    assert record.masked_url == "postgres://u:********@h/p"


def test_settings_alias_record_url_is_rendered_from_settings(make_app, databases):
    record = plan([make_app("stats", 'DATABASE_ALIAS = "reporting"\n')], databases, environ={}).records["stats"]
    assert record.url == "postgres://ro:s3cret@db.internal:5432/reports"
    assert "s3cret" not in repr(record)


class TestMerge:
    def test_new_aliases_get_django_defaults(self, tmp_path):
        declared = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "d.db")}}
        handler = ConnectionHandler(declared)
        live = merge({"x": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "x.db")}}, handler, declared)
        assert live["x"]["TEST"] == {"CHARSET": None, "COLLATION": None, "MIGRATE": True, "MIRROR": None, "NAME": None}
        assert live["x"]["ATOMIC_REQUESTS"] is False
        assert live["x"]["AUTOCOMMIT"] is True
        assert handler["x"].settings_dict["NAME"] == str(tmp_path / "x.db")
        assert handler["x"].connection is None

    def test_handler_that_already_read_its_settings_sees_new_aliases(self, tmp_path):
        declared = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "d.db")}}
        handler = ConnectionHandler()  # reads settings lazily, like django.db.connections
        handler._settings = {"default": dict(declared["default"])}
        assert list(handler) == ["default"]  # settings now cached, and a different dict from ``declared``
        handler.all()
        merge({"late": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "late.db")}}, handler, declared)
        assert "late" in handler.settings and "late" in declared
        assert handler["late"].settings_dict["TEST"]["MIGRATE"] is True
        assert declared["late"] is not handler.settings["late"]

    def test_existing_alias_is_left_alone(self, tmp_path):
        declared = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "a"}}
        handler = ConnectionHandler(declared)
        merge({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "b"}}, handler, declared)
        assert declared["default"]["NAME"] == "a"


class TestConflicts:
    def test_label_alias_taken_by_another_database(self, make_app, databases):
        databases["billing"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/other.db"}
        with pytest.raises(AppDatabaseConfigError) as info:
            plan([make_app("billing")], databases, environ={"BILLING_DATABASE_URL": "postgres://u:pw@h/billing"})
        assert "'billing'" in str(info.value) and "BILLING_DATABASE_URL" in str(info.value)

    def test_shared_url_with_different_options(self, make_app, databases):
        url = 'DATABASE_URL = "postgres://u@h/shared"\n'
        apps = [make_app("a", url), make_app("b", url + "CONN_MAX_AGE = 30\n")]
        with pytest.raises(AppDatabaseConfigError, match="shares database alias 'a' with app 'a'"):
            plan(apps, databases, environ={})

    def test_database_alias_pointing_at_another_database(self, make_app, databases):
        app = make_app("r", 'DATABASE_URL = "postgres://ro:pw@elsewhere/x"\nDATABASE_ALIAS = "reporting"\n')
        with pytest.raises(AppDatabaseConfigError) as info:
            plan([app], databases, environ={})
        assert "already names another database" in str(info.value)
        assert "s3cret" not in str(info.value) and ":pw@" not in str(info.value)

    def test_unknown_database_alias_lists_the_known_ones(self, make_app, databases):
        with pytest.raises(AppDatabaseConfigError, match="Use one of: default, reporting"):
            plan([make_app("r", 'DATABASE_ALIAS = "nope"\n')], databases, environ={})

    def test_options_cannot_change_a_settings_alias(self, make_app, databases):
        app = make_app("r", 'DATABASE_ALIAS = "reporting"\nCONN_MAX_AGE = 5\n')
        with pytest.raises(AppDatabaseConfigError, match="cannot change the existing alias 'reporting'"):
            plan([app], databases, environ={})

    def test_missing_default(self, make_app):
        with pytest.raises(AppDatabaseConfigError, match="no 'default' database"):
            plan([make_app("a")], {}, environ={})


class TestSameDatabaseRule:
    """One identity rule: whatever selects the server, database or schema makes another database."""

    @pytest.fixture
    def pg(self):
        return {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "main",
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "USER": "app",
                "PASSWORD": "pw",
                "OPTIONS": {},
            },
        }

    @pytest.mark.parametrize(
        "query",
        [
            "currentSchema=ledger",
            "options=-c%20search_path%3Dledger",
            "host=127.0.0.1&port=5611",
            "hostaddr=127.0.0.2",
            "dbname=other",
        ],
    )
    def test_an_option_selecting_the_server_database_or_schema_gets_its_own_alias(self, make_app, pg, query):
        result = plan(
            [make_app("ledger")], pg, environ={"LEDGER_DATABASE_URL": f"postgres://app:pw@127.0.0.1:5432/main?{query}"}
        )
        assert aliases(result) == {"ledger": "ledger"}
        assert result.new_databases["ledger"]["OPTIONS"]

    def test_services_are_databases_of_their_own(self, make_app, pg):
        pg["default"] = {"ENGINE": "django.db.backends.postgresql", "NAME": "", "OPTIONS": {"service": "main"}}
        result = plan([make_app("ledger")], pg, environ={"LEDGER_DATABASE_URL": "postgres://?service=ledger"})
        assert aliases(result) == {"ledger": "ledger"}
        assert result.new_databases["ledger"]["OPTIONS"] == {"service": "ledger"}

    def test_the_same_database_with_the_same_options_shares_the_alias(self, make_app, pg):
        pg["default"]["OPTIONS"] = {"sslmode": "require"}
        result = plan(
            [make_app("ledger")],
            pg,
            environ={"LEDGER_DATABASE_URL": "postgres://app:pw@127.0.0.1/main?sslmode=require"},
        )
        assert aliases(result) == {"ledger": "default"}

    @pytest.mark.parametrize(
        ("url", "module", "named"),
        [
            ("postgres://app:pw@127.0.0.1/main?sslmode=require", "", "OPTIONS['sslmode']"),
            ("postgres://app:other@127.0.0.1/main", "", "PASSWORD"),
            ("postgres://app:pw@127.0.0.1/main", "CONN_MAX_AGE = 60\n", "CONN_MAX_AGE"),
            (
                "postgres://app:pw@127.0.0.1/main",
                "DATABASE_OPTIONS = {'connect_timeout': 3}\n",
                "OPTIONS['connect_timeout']",
            ),
            ("postgres://app:pw@127.0.0.1/main", "DATABASE_TEST = {'NAME': 'test_x'}\n", "TEST"),
        ],
    )
    def test_a_declared_setting_the_shared_alias_lacks_is_refused_not_dropped(self, make_app, pg, url, module, named):
        app = make_app("ledger", f"DATABASE_URL = {url!r}\n{module}")
        with pytest.raises(AppDatabaseConfigError) as info:
            plan([app], pg, environ={})
        message = str(info.value)
        assert "app 'ledger'" in message and "settings.DATABASES['default']" in message
        assert named in message and "DATABASE_ALIAS" in message
        assert ":pw@" not in message and "other" not in message

    def test_a_database_alias_of_its_own_keeps_the_options(self, make_app, pg):
        app = make_app(
            "ledger", "DATABASE_URL = 'postgres://app:pw@127.0.0.1/main?sslmode=require'\nDATABASE_ALIAS = 'ledger'\n"
        )
        result = plan([app], pg, environ={})
        assert aliases(result) == {"ledger": "ledger"}
        assert result.new_databases["ledger"]["OPTIONS"] == {"sslmode": "require"}


class TestConnectionSettings:
    """ATOMIC_REQUESTS, AUTOCOMMIT, DISABLE_SERVER_SIDE_CURSORS, TIME_ZONE, CONN_*, TEST, whichever source."""

    BODY = (
        'ATOMIC_REQUESTS = True\nAUTOCOMMIT = False\nDISABLE_SERVER_SIDE_CURSORS = True\nTIME_ZONE = "Europe/Paris"\n'
        'CONN_MAX_AGE = 60\nCONN_HEALTH_CHECKS = True\nDATABASE_TEST = {"NAME": "test_ledger"}\n'
        'SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 2}\nDATABASE_OPTIONS = {"timeout": 9}\n'
    )
    DECLARED = {
        "ATOMIC_REQUESTS": True,
        "AUTOCOMMIT": False,
        "DISABLE_SERVER_SIDE_CURSORS": True,
        "TIME_ZONE": "Europe/Paris",
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": "test_ledger"},
    }

    def test_database_py_sets_every_connection_setting(self, make_app, databases, tmp_path):
        app = make_app("ledger", f'DATABASE_URL = "sqlite:///{tmp_path}/l.db"\n{self.BODY}')
        result = plan([app], databases, environ={})
        settings_dict = result.new_databases["ledger"]
        assert {key: settings_dict[key] for key in self.DECLARED} == self.DECLARED
        assert settings_dict["OPTIONS"] == {"timeout": 9}
        assert result.records["ledger"].engine_options == {"pool_size": 2}

    def test_an_env_var_moves_the_app_and_keeps_how_database_py_uses_it(self, make_app, databases, tmp_path):
        app = make_app("ledger", f'DATABASE_URL = "sqlite:///{tmp_path}/l.db"\n{self.BODY}')
        result = plan([app], databases, environ={"LEDGER_DATABASE_URL": "postgres://u@h/ledger?sslmode=require"})
        settings_dict = result.new_databases["ledger"]
        assert settings_dict["ENGINE"] == "django.db.backends.postgresql" and settings_dict["NAME"] == "ledger"
        assert {key: settings_dict[key] for key in self.DECLARED} == self.DECLARED
        # The driver options come from the variable alone: SQLite's timeout is no psycopg option.
        assert settings_dict["OPTIONS"] == {"sslmode": "require"}
        assert result.records["ledger"].engine_options == {"pool_size": 2}
        assert result.records["ledger"].source == "LEDGER_DATABASE_URL"

    @pytest.mark.parametrize("atomic", [True, False])
    def test_app_aliases_inherit_atomic_requests_from_default(self, make_app, databases, tmp_path, atomic):
        databases["default"]["ATOMIC_REQUESTS"] = atomic
        result = plan(
            [make_app("a", f'DATABASE_URL = "sqlite:///{tmp_path}/a.db"\n'), make_app("b")],
            databases,
            environ={"B_DATABASE_URL": "postgres://u@h/b"},
        )
        assert result.new_databases["a"]["ATOMIC_REQUESTS"] is atomic
        assert result.new_databases["b"]["ATOMIC_REQUESTS"] is atomic

    def test_an_app_can_opt_out_of_atomic_requests(self, make_app, databases, tmp_path):
        databases["default"]["ATOMIC_REQUESTS"] = True
        app = make_app("a", f'DATABASE_URL = "sqlite:///{tmp_path}/a.db"\nATOMIC_REQUESTS = False\n')
        assert plan([app], databases, environ={}).new_databases["a"]["ATOMIC_REQUESTS"] is False

    @pytest.mark.parametrize(
        "line", ['ATOMIC_REQUESTS = "yes"', "AUTOCOMMIT = 1", "DISABLE_SERVER_SIDE_CURSORS = None", "TIME_ZONE = 3"]
    )
    def test_a_wrong_type_is_an_error_naming_the_module(self, make_app, databases, tmp_path, line):
        app = make_app("a", f'DATABASE_URL = "sqlite:///{tmp_path}/a.db"\n{line}\n')
        expected = rf"app 'a' \(module {app.name}\.database.*{line.split()[0]} must be"
        with pytest.raises(AppDatabaseConfigError, match=expected):
            plan([app], databases, environ={})

    def test_they_cannot_change_an_alias_of_settings(self, make_app, databases):
        app = make_app("r", 'DATABASE_ALIAS = "reporting"\nATOMIC_REQUESTS = True\n')
        with pytest.raises(AppDatabaseConfigError, match="ATOMIC_REQUESTS cannot change the existing alias"):
            plan([app], databases, environ={})


class TestSilentlyAcceptedBefore:
    def test_djangos_internal_no_db_alias_is_refused(self, make_app, databases):
        with pytest.raises(AppDatabaseConfigError, match="'__no_db__' is Django's internal alias"):
            plan([make_app("a", 'DATABASE_ALIAS = "__no_db__"\n')], databases, environ={})

    def test_a_sqlite_path_with_a_tilde_is_refused(self, make_app, databases):
        with pytest.raises(AppDatabaseConfigError, match="SQLite paths are not expanded") as info:
            plan([make_app("a")], databases, environ={"A_DATABASE_URL": "sqlite:///~/x.sqlite3"})
        assert "A_DATABASE_URL" in str(info.value)

    def test_an_unencoded_question_mark_in_the_password_is_refused(self, make_app, databases):
        # urlsplit reads host 'u', port 12: the password's '?' starts the query.
        with pytest.raises(AppDatabaseConfigError, match="has an '@' after the host") as info:
            plan([make_app("a")], databases, environ={"A_DATABASE_URL": "postgres://u:12?service=x@127.0.0.1/db"})
        assert "12?service" not in str(info.value)

    def test_an_at_sign_in_the_query_after_credentials_is_fine(self, make_app, databases):
        result = plan(
            [make_app("a")],
            databases,
            environ={"A_DATABASE_URL": "postgres://u:pw@127.0.0.1/db?application_name=me@work"},
        )
        assert result.new_databases["a"]["OPTIONS"] == {"application_name": "me@work"}


class TestTestDatabaseNames:
    @pytest.mark.parametrize("spelling", ["{path}", "{tmp}/./real.sqlite3", "{tmp}/link.sqlite3"])
    def test_a_test_name_that_is_the_real_sqlite_file_is_found(self, make_app, databases, tmp_path, spelling):
        path = tmp_path / "real.sqlite3"
        (tmp_path / "link.sqlite3").symlink_to(path)
        test_name = spelling.format(path=path, tmp=tmp_path)
        app = make_app("a", f'DATABASE_URL = "sqlite:///{path}"\nDATABASE_TEST = {{"NAME": {test_name!r}}}\n')
        # Planned (django_appdb.E007 and the test set-up refuse it), not raised at start-up.
        new = plan([app], databases, environ={}).new_databases
        assert colliding_test_databases({**databases, **new}) == [("a", test_name, "a")]

    def test_a_test_name_that_is_another_alias_real_database_is_found(self, make_app, databases, tmp_path):
        other = make_app("b", f'DATABASE_URL = "sqlite:///{tmp_path}/b.sqlite3"\n')
        app = make_app(
            "a",
            f'DATABASE_URL = "sqlite:///{tmp_path}/a.sqlite3"\nDATABASE_TEST = {{"NAME": "{tmp_path}/b.sqlite3"}}\n',
        )
        new = plan([app, other], databases, environ={}).new_databases
        assert colliding_test_databases({**databases, **new}) == [("a", f"{tmp_path}/b.sqlite3", "b")]

    def test_a_test_name_that_is_the_real_server_database_is_found_whatever_the_source(self, make_app, databases):
        app = make_app("a", 'DATABASE_TEST = {"NAME": "ledger"}\n')
        new = plan([app], databases, environ={"A_DATABASE_URL": "postgres://u:pw@h/ledger"}).new_databases
        assert colliding_test_databases({**databases, **new}) == [("a", "ledger", "a")]
        # Django's rule: test_<NAME> on servers, is never the database itself.
        app = make_app("c", "")
        new = plan([app], databases, environ={"C_DATABASE_URL": "postgres://u:pw@h/ledger"}).new_databases
        assert colliding_test_databases({**databases, **new}) == []

    def test_a_test_name_of_its_own_is_fine(self, make_app, databases, tmp_path):
        app = make_app(
            "a",
            f'DATABASE_URL = "sqlite:///{tmp_path}/real.sqlite3"\n'
            f'DATABASE_TEST = {{"NAME": "{tmp_path}/test_real.sqlite3"}}\n',
        )
        new = plan([app], databases, environ={}).new_databases
        assert new["a"]["TEST"] == {"NAME": f"{tmp_path}/test_real.sqlite3"}
        assert colliding_test_databases({**databases, **new}) == []
