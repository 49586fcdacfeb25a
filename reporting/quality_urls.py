from django.urls import path

from . import quality_views

app_name = "quality"

urlpatterns = [
    path("", quality_views.quality_page, name="page"),
    path("export.csv", quality_views.quality_csv, name="csv"),
]
