from django.apps import AppConfig


class NotesConfig(AppConfig):
    """A notes app written like a third-party one: it knows nothing of django-appdb."""

    name = "notes"
