"""The notes app's own tests, as a third-party app writes them: no ``databases`` declared.

Django's default allows only ``default``; with django-appdb the default also
allows the app databases, so these pass unchanged when ``NOTES_DATABASE_URL``
moves the app to a database of its own.
"""

from django.db import IntegrityError, transaction
from django.test import TestCase, TransactionTestCase

from notes.models import Note, Notebook


class NotebookTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.notebook = Notebook.objects.create(title="Ideas")
        Note.objects.create(notebook=cls.notebook, text="first")

    def test_notes_are_listed_pinned_first(self):
        Note.objects.create(notebook=self.notebook, text="second", pinned=True)
        self.assertEqual([note.text for note in self.notebook.notes.all()], ["second", "first"])

    def test_titles_are_unique(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            Notebook.objects.create(title="Ideas")

    def test_deleting_a_notebook_deletes_its_notes(self):
        self.notebook.delete()
        self.assertEqual(Note.objects.count(), 0)

    def test_each_test_sees_only_the_class_data(self):
        self.assertEqual(Notebook.objects.count(), 1)
        self.assertEqual(Note.objects.count(), 1)


class NotebookTransactionTests(TransactionTestCase):
    def test_committed_rows_are_there_until_the_flush(self):
        with transaction.atomic():
            notebook = Notebook.objects.create(title="Committed")
            Note.objects.create(notebook=notebook, text="kept")
        self.assertEqual(Note.objects.get().notebook.title, "Committed")

    def test_the_flush_emptied_the_tables(self):
        self.assertEqual(Notebook.objects.count(), 0)
