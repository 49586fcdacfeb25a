from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from . import health

admin.site.site_header = "MedVision QA and administration — not for clinical use"
admin.site.site_title = "MedVision admin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="procedures:list", permanent=False), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("procedures/", include("portal.urls")),
    path("procedures/", include("exports.urls")),
    path("procedures/", include("reporting.urls")),
    path("api/", include("medvision.api_urls")),
    path("qa/quality/", include("reporting.quality_urls")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

# Under /api/ even a path that matches no route answers in the API's JSON error envelope.
handler400 = "medvision.api_errors.handler400"
handler403 = "medvision.api_errors.handler403"
handler404 = "medvision.api_errors.handler404"
handler500 = "medvision.api_errors.handler500"
