from django import forms

from analysis.models import Risk
from medvision.text_rules import multi_line_text, single_line_text
from procedures.models import ProcedureSession, SessionMode, Video


class ProcedureSessionForm(forms.ModelForm):
    class Meta:
        model = ProcedureSession
        fields = ["title", "procedure_type", "mode", "patient_ref", "encounter_ref", "notes"]
        labels = {"patient_ref": "Patient reference (EHR id)", "encounter_ref": "Encounter reference (EHR id)"}
        help_texts = {
            "patient_ref": "The EHR's opaque identifier. Never a name or date of birth.",
            "title": "A short description, e.g. 'Screening colonoscopy'. No patient names.",
        }
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


def _choices(values):
    from analysis.engine import humanize

    return [(v, humanize(v)) for v in values]


class FindingForm(forms.Form):
    """A clinician's finding (new) or correction (edit), with the analyzer's vocabulary for
    the session's procedure type so that corrected findings stay comparable."""

    category = forms.ChoiceField()
    location = forms.ChoiceField()
    risk = forms.ChoiceField(choices=Risk.choices)
    label = forms.CharField(max_length=120, required=False, validators=[single_line_text])
    size_mm = forms.FloatField(required=False, min_value=0, max_value=500, label="Size (mm)")
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                  validators=[multi_line_text])
    suggested_next_step = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                          validators=[multi_line_text])
    start_ms = forms.IntegerField(min_value=0, required=False, label="Time (ms)")
    video = forms.ModelChoiceField(
        queryset=Video.objects.none(), required=False, label="Recording",
        help_text="The recording the time refers to.",
        error_messages={"invalid_choice": "That recording is not one of this session's recordings."},
    )

    def __init__(self, *args, procedure_type: str, session: ProcedureSession | None = None,
                 recording_fixed: bool = False, allow_no_recording: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        from analysis.engine import CATEGORIES, LOCATIONS

        self.fields["category"].choices = _choices(CATEGORIES[procedure_type])
        self.fields["location"].choices = _choices(LOCATIONS[procedure_type])
        videos = session.videos.order_by("number") if session is not None else Video.objects.none()
        if session is None or not videos.exists():
            del self.fields["video"]  # no recording to refer to (a live session, or none yet)
            return
        field = self.fields["video"]
        field.queryset = videos  # only this session's recordings validate
        field.label_from_instance = lambda v: v.display_name
        # A recorded session's finding refers to one of its recordings; a live session's may.
        # (``allow_no_recording``: editing a finding that has none keeps that possible.)
        field.required = session.mode == SessionMode.RECORDED and not allow_no_recording
        field.empty_label = None if field.required else "No recording (live stream)"
        if recording_fixed:
            # An AI finding's times are its key frame's, in that frame's recording: it cannot move.
            field.disabled = True
            field.help_text = "The recording the model found it in."


class NoteForm(forms.Form):
    note = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
                           validators=[multi_line_text])


class AddendumForm(forms.Form):
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), validators=[multi_line_text])
