import factory

from analysis.models import Finding, FindingOrigin, Frame, FrameSource
from procedures.tests.factories import ProcedureSessionFactory


class FrameFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Frame

    session = factory.SubFactory(ProcedureSessionFactory)
    source = FrameSource.VIDEO
    timestamp_ms = factory.Sequence(lambda n: n * 1000)


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Finding

    session = factory.SubFactory(ProcedureSessionFactory)
    origin = FindingOrigin.AI
    start_ms = 1000
    end_ms = 3000
    category = "polyp"
    label = "Sessile polyp"
    location = "sigmoid_colon"
    risk = "medium"
    confidence = 0.7
    description = "Small sessile lesion."
    backend = "demo"
    model_id = "medvision-demo-gemma3-random (NOT a medical model)"
    prompt_version = "frame-v1"
    is_demo = True
