"""The notes app's pytest tests, as a third-party app writes them: a bare ``django_db`` mark or ``db`` fixture."""

import pytest
from django.db import IntegrityError, transaction

from notes.models import Note, Notebook


@pytest.mark.django_db
def test_a_notebook_and_its_notes():
    notebook = Notebook.objects.create(title="Ideas")
    Note.objects.create(notebook=notebook, text="first")
    Note.objects.create(notebook=notebook, text="second", pinned=True)
    assert [note.text for note in notebook.notes.all()] == ["second", "first"]


@pytest.mark.django_db
def test_titles_are_unique():
    Notebook.objects.create(title="Ideas")
    with pytest.raises(IntegrityError), transaction.atomic():
        Notebook.objects.create(title="Ideas")


@pytest.mark.django_db(transaction=True)
def test_committed_rows_in_a_transactional_test():
    with transaction.atomic():
        Notebook.objects.create(title="Committed")
    assert Notebook.objects.count() == 1


def test_the_db_fixture(db):
    assert Notebook.objects.count() == 0
    Notebook.objects.create(title="Fixture")
    assert Notebook.objects.filter(title="Fixture").exists()
