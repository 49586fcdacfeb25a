"""Create (or reset) the demo clinician and QA reviewer for a local embedded run.

The passwords are random and printed once; they are never written to a file. Refuses to
run when DEBUG is off: demo accounts have no place in production.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from medvision import roles

DEMO_USERS = {
    "demo.clinician": (roles.CLINICIAN, False),
    "demo.qa": (roles.QA_REVIEWER, True),
}


class Command(BaseCommand):
    help = "Create the demo clinician and QA reviewer with fresh random passwords (DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo users are for local development only (DEBUG is off).")
        User = get_user_model()
        lines = []
        for username, (role, is_staff) in DEMO_USERS.items():
            password = secrets.token_urlsafe(12)
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff = is_staff
            user.is_active = True
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=role))
            lines.append(f"  {role:<12} user: {username:<16} password: {password}")
        self.stdout.write("Demo accounts (passwords change on every start):\n" + "\n".join(lines))
