from django.apps import AppConfig


class LockappConfig(AppConfig):
    name = "tests.lockproject.lockapp"
    label = "lockapp"
