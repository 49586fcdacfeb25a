import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from procedures.models import ProcedureSession, ProcedureType, SessionMode

PASSWORD = "correct-horse-battery-staple-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@hospital.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):
        """``UserFactory(role="clinician")`` puts the user in that role's group."""
        obj.save()
        if extracted:
            # get_or_create: transactional tests flush the groups the data migration made.
            obj.groups.add(Group.objects.get_or_create(name=extracted)[0])


class ProcedureSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProcedureSession

    title = factory.Sequence(lambda n: f"Screening colonoscopy {n}")
    procedure_type = ProcedureType.COLONOSCOPY
    mode = SessionMode.RECORDED
    clinician = factory.SubFactory(UserFactory, role="clinician")
    patient_ref = factory.Sequence(lambda n: f"MRN-{1000 + n}")
