"""What a pytest test may reach through SQLAlchemy: only the aliases its mark allows (pytest only)."""

import pytest
from django.test.testcases import DatabaseOperationForbidden
from sqlalchemy import select

from django_appdb import get_sync_app_session
from orders import store
from orders.test_isolation import new_order


def test_an_unmarked_test_is_refused_every_alias():
    for label in ("catalog", "orders"):
        # Both what Django's test cases raise and what pytest-django raises.
        with pytest.raises(DatabaseOperationForbidden) as caught, get_sync_app_session(label) as session:
            session.execute(new_order("P-1") if label == "orders" else select(1))
        assert isinstance(caught.value, RuntimeError)
        assert "django_db" in str(caught.value)


@pytest.mark.django_db(databases=["default"])
def test_a_mark_without_the_alias_is_refused_it():
    with get_sync_app_session("catalog") as session:
        assert session.scalar(select(1)) == 1
    with pytest.raises(DatabaseOperationForbidden), store.Session() as session:
        session.execute(new_order("P-2"))
        session.commit()
