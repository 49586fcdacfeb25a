"""Create an EHR connector service account and print its API token once."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from medvision import roles


class Command(BaseCommand):
    help = "Create an EHR connector account (API token only, no password) and print its token once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Account name, e.g. 'epic-prod'.")

    def handle(self, *args, name, **options):
        User = get_user_model()
        username = f"connector.{name}"
        if User.objects.filter(username=username).exists():
            raise CommandError(
                f"{username} already exists. Revoke its token in admin (Auth Token) and run "
                "this command with a new name, or delete the account first."
            )
        with transaction.atomic():
            user = User(username=username, is_staff=False)
            user.set_unusable_password()  # service accounts authenticate by token only
            user.save()
            user.groups.add(Group.objects.get(name=roles.EHR_CONNECTOR))
            token = Token.objects.create(user=user)
        self.stdout.write(f"Created {username}. API token (shown once, store it in the EHR's secret store):")
        self.stdout.write(token.key)
