from django.urls import path

from . import review_views, views

app_name = "procedures"

urlpatterns = [
    path("", views.session_list, name="list"),
    path("new/", views.session_create, name="create"),
    path("<uuid:session_id>/", views.session_detail, name="detail"),
    path("<uuid:session_id>/frames/<uuid:frame_id>.jpg", views.frame_image, name="frame-image"),
    path("<uuid:session_id>/videos/<uuid:video_id>/file", views.video_file, name="video-file"),
    path("<uuid:session_id>/live/", review_views.session_live, name="live"),
    path("<uuid:session_id>/findings/new/", review_views.finding_edit, name="finding-new"),
    path("<uuid:session_id>/findings/<uuid:finding_id>/edit/", review_views.finding_edit, name="finding-edit"),
    path("<uuid:session_id>/findings/<uuid:finding_id>/review/", review_views.finding_review, name="finding-review"),
    path("<uuid:session_id>/sign/", review_views.session_sign, name="sign"),
    path("<uuid:session_id>/notes/", review_views.session_notes, name="notes"),
    path("<uuid:session_id>/addenda/", review_views.addendum_create, name="addendum"),
]
