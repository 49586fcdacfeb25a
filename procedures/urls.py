from django.urls import path

from . import views

app_name = "procedures"

urlpatterns = [
    path("", views.session_list, name="list"),
    path("new/", views.session_create, name="create"),
    path("<uuid:session_id>/", views.session_detail, name="detail"),
    path("<uuid:session_id>/frames/<uuid:frame_id>.jpg", views.frame_image, name="frame-image"),
]
