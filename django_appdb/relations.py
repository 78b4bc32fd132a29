"""Which relations between models cross two databases: the one finder behind E003 and ``appdb_graph``.

Django cannot join, constrain or assign across databases, so a ForeignKey,
OneToOneField (multi-table inheritance included), ManyToManyField (with its
through table) or GenericRelation between models routed to two aliases is a
mistake. :func:`crossing_relations` finds each one, as the router places the
models; the system check words them as errors and the graph draws them.
Nothing here connects.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.db.models import Model

from django_appdb.state import state

if TYPE_CHECKING:
    from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
    from django.db.models import ManyToManyRel

    from django_appdb.sqlalchemy.fieldtypes import AnyField

__all__ = ["CrossingRelation", "crossing_relations", "generic_fields", "model_crossings", "relation_models"]


@dataclass(frozen=True)
class CrossingRelation:
    """A relation field of :attr:`model` whose models are not all on :attr:`alias`."""

    #: The model declaring the field, and the alias its rows live on.
    model: type[Model]
    field: Any
    alias: str
    #: Every model the relation joins, with its alias, the declaring model first:
    #: the related model, then (for a many-to-many) the through model.
    sides: tuple[tuple[type[Model], str], ...]

    @property
    def related(self) -> type[Model]:
        """Return the model the field points at."""
        return self.sides[1][0]

    @property
    def related_alias(self) -> str:
        """Return the alias of the model the field points at."""
        return self.sides[1][1]

    @property
    def elsewhere(self) -> tuple[type[Model], str]:
        """Return the first side (related model, else through model) that is not on :attr:`alias`."""
        return next(side for side in self.sides if side[1] != self.alias)

    @property
    def name(self) -> str:
        """Return the field's dotted name, ``app_label.Model.field``."""
        return f"{self.model._meta.label}.{self.field.name}"


def generic_fields() -> tuple[type[GenericForeignKey], type[GenericRelation]] | None:
    """Return contenttypes' ``GenericForeignKey`` and ``GenericRelation``, or None when it is not installed."""
    # contenttypes' fields import its models, which exist only when it is installed.
    if not apps.is_installed("django.contrib.contenttypes"):
        return None
    from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation

    return GenericForeignKey, GenericRelation


def relation_models(labels: Collection[str] | None = None) -> Iterator[type[Model]]:
    """Yield the models of the given apps (all when None) whose relations are examined, in ``apps.get_models()`` order.

    Proxies are left out: they are routed with their concrete model, whose
    fields are examined there.
    """
    for model in apps.get_models():
        if (labels is None or model._meta.app_label in labels) and not model._meta.proxy:
            yield model


def crossing_relations(labels: Collection[str] | None = None) -> Iterator[CrossingRelation]:
    """Yield every relation declared by a model of the given apps (all when None) that crosses databases."""
    for model in relation_models(labels):
        yield from model_crossings(model)


def model_crossings(model: type[Model]) -> Iterator[CrossingRelation]:
    """Yield the relations ``model`` declares that cross databases, in declaration order.

    Concrete relations first, then many-to-many, then generic relations. A
    relation to a model that is not loaded (a string) is skipped: Django's own
    checks report it.
    """
    own = state.alias_of(model)
    for field in model._meta.local_fields:
        related = field.related_model
        if not (field.many_to_one or field.one_to_one) or related is None or isinstance(related, str):
            continue
        yield from _crossing(model, field, own, related)
    for field in model._meta.local_many_to_many:
        yield from _crossing_many_to_many(model, field, own)
    kinds = generic_fields()
    if kinds is None:
        return
    for field in model._meta.private_fields:
        if isinstance(field, kinds[1]):
            # A string while the target model is not loaded yet, whatever the stubs say.
            target = cast("type[Model] | str | None", field.related_model)
            if target is not None and not isinstance(target, str):
                yield from _crossing(model, field, own, target)


def _crossing(model: type[Model], field: Any, own: str, related: type[Model]) -> Iterator[CrossingRelation]:
    other = state.alias_of(related)
    if other != own:
        yield CrossingRelation(model, field, own, ((model, own), (related, other)))


def _crossing_many_to_many(model: type[Model], field: AnyField, own: str) -> Iterator[CrossingRelation]:
    remote = cast("ManyToManyRel", field.remote_field)
    target = remote.model
    through = remote.through
    if isinstance(target, str) or isinstance(through, str) or through is None:
        return
    sides = ((model, own), (target, state.alias_of(target)), (through, state.alias_of(through)))
    if len({alias for _, alias in sides}) > 1:
        yield CrossingRelation(model, field, own, sides)
