"""Pipelines and stages: events only (the sandbox's pages and seed change them)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from ..models import (
    ChangeEvent,
    Deal,
    Pipeline,
    SandboxCompany,
    SandboxUser,
    Stage,
)
from ..routers import SANDBOX_DB
from .changes import RecordInputError, _event_record, _snapshot

logger = logging.getLogger(__name__)


def pipeline_create(*, company: SandboxCompany, actor: SandboxUser | None, name: str, source: str) -> Pipeline:
    with transaction.atomic(using=SANDBOX_DB):
        order = Pipeline.objects.filter(company=company).count() + 1
        pipeline = Pipeline.objects.create(company=company, name=name[:255], order_nr=order)
        _event_record(company=company, actor=actor, instance=pipeline, action=ChangeEvent.Action.CREATE, source=source)
    return pipeline


def pipeline_update(
    *,
    pipeline: Pipeline,
    actor: SandboxUser | None,
    source: str,
    name: str | None = None,
    deal_probability: bool | None = None,
) -> Pipeline:
    with transaction.atomic(using=SANDBOX_DB):
        pipeline = Pipeline.objects.select_for_update().select_related("company").get(pk=pipeline.pk)
        snapshot = _snapshot(pipeline)
        if name is not None:
            pipeline.name = name[:255]
        if deal_probability is not None:
            pipeline.deal_probability = deal_probability
        pipeline.update_time = timezone.now()
        pipeline.save()
        _event_record(
            company=pipeline.company,
            actor=actor,
            instance=pipeline,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            before=snapshot,
        )
    return pipeline


def pipeline_delete(*, pipeline: Pipeline, actor: SandboxUser | None, source: str) -> None:
    """Delete an empty pipeline (with its stages); a pipeline that still has deals is refused."""
    with transaction.atomic(using=SANDBOX_DB):
        pipeline = Pipeline.objects.select_for_update().select_related("company").get(pk=pipeline.pk)
        if Deal.objects.filter(pipeline=pipeline, is_deleted=False).exists():
            raise RecordInputError("The pipeline still has deals", errors={"id": ["the pipeline still has deals"]})
        for stage in list(pipeline.stages.all()):
            stage_delete(stage=stage, actor=actor, source=source)
        snapshot = _snapshot(pipeline)
        _event_record(
            company=pipeline.company,
            actor=actor,
            instance=pipeline,
            action=ChangeEvent.Action.DELETE,
            source=source,
            before=snapshot,
        )
        Deal.objects.filter(pipeline=pipeline).delete()
        pipeline.delete()


def stage_create(
    *, pipeline: Pipeline, actor: SandboxUser | None, name: str, source: str, deal_probability: int = 100
) -> Stage:
    with transaction.atomic(using=SANDBOX_DB):
        order = pipeline.stages.count() + 1
        stage = Stage.objects.create(
            pipeline=pipeline, name=name[:255], order_nr=order, deal_probability=deal_probability
        )
        _event_record(
            company=pipeline.company, actor=actor, instance=stage, action=ChangeEvent.Action.CREATE, source=source
        )
    return stage


def stage_update(
    *, stage: Stage, actor: SandboxUser | None, source: str, name: str | None = None, rotten_days: int | None = None
) -> Stage:
    with transaction.atomic(using=SANDBOX_DB):
        stage = Stage.objects.select_for_update().select_related("pipeline__company").get(pk=stage.pk)
        snapshot = _snapshot(stage)
        if name is not None:
            stage.name = name[:255]
        if rotten_days is not None:
            stage.rotten_days = rotten_days or None
        stage.update_time = timezone.now()
        stage.save()
        _event_record(
            company=stage.pipeline.company,
            actor=actor,
            instance=stage,
            action=ChangeEvent.Action.CHANGE,
            source=source,
            before=snapshot,
        )
    return stage


def stage_delete(*, stage: Stage, actor: SandboxUser | None, source: str) -> None:
    """Delete a stage without deals (a stage with deals is refused, as Pipedrive asks to move them first)."""
    with transaction.atomic(using=SANDBOX_DB):
        stage = Stage.objects.select_for_update().select_related("pipeline__company").get(pk=stage.pk)
        if Deal.objects.filter(stage=stage, is_deleted=False).exists():
            raise RecordInputError("The stage still has deals", errors={"id": ["the stage still has deals"]})
        snapshot = _snapshot(stage)
        _event_record(
            company=stage.pipeline.company,
            actor=actor,
            instance=stage,
            action=ChangeEvent.Action.DELETE,
            source=source,
            before=snapshot,
        )
        Deal.objects.filter(stage=stage).delete()
        stage.delete()
