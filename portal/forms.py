import re

from django import forms

from analysis.models import Risk
from medvision.text_rules import multi_line_text, single_line_text
from procedures.models import ProcedureSession, SessionMode, Video


class MarksInvalidFields:
    """Fields with errors are marked for everyone: a class for the eye (the CSS highlights
    it) and ``aria-describedby`` naming the message beside the field, for screen readers
    (Django itself adds ``aria-invalid``). The templates give the message that id."""

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name not in self.fields:
                continue
            attrs = self.fields[name].widget.attrs
            attrs["class"] = " ".join(c for c in (attrs.get("class", ""), "invalid") if c)
            described = [f"{self[name].auto_id}_error"]
            if self.fields[name].help_text:
                described.append(f"{self[name].auto_id}_helptext")
            attrs["aria-describedby"] = " ".join(described)


class ProcedureSessionForm(MarksInvalidFields, forms.ModelForm):
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


MEDIA_TIME = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d{1,3})?)$")


class MediaTimeField(forms.Field):
    """A time in the recording as the player shows it: ``m:ss`` (``h:mm:ss``, an optional
    ``.mmm``), or plain seconds (``75`` is 1:15). Cleaned to milliseconds; shown as m:ss."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "m:ss", "autocomplete": "off"})
    default_error_messages = {"invalid": "Enter the time as m:ss (for example 1:05), as on the player."}

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            seconds, millis = divmod(value, 1000)
            minutes, seconds = divmod(seconds, 60)
            hours, minutes = divmod(minutes, 60)
            text = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
            return text + (f".{millis:03d}".rstrip("0") if millis else "")
        return value

    def to_python(self, value):
        value = (value or "").strip() if isinstance(value, str) else value
        if value in (None, ""):
            return None
        if isinstance(value, int):
            return value
        try:
            return round(float(value) * 1000) if re.fullmatch(r"\d+(?:\.\d{1,3})?", value) else self._clock(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None

    @staticmethod
    def _clock(value: str) -> int:
        match = MEDIA_TIME.match(value)
        if not match:
            raise ValueError(value)
        hours, minutes, seconds = int(match.group(1) or 0), int(match.group(2)), float(match.group(3))
        if seconds >= 60 or (match.group(1) and minutes >= 60):
            raise ValueError(value)
        return round(((hours * 60 + minutes) * 60 + seconds) * 1000)


class FindingForm(MarksInvalidFields, forms.Form):
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
    start_ms = MediaTimeField(required=False, label="Start (m:ss)",
                              help_text="Where in the recording it is seen; the key frame is taken there.")
    end_ms = MediaTimeField(required=False, label="End (m:ss)", help_text="Leave empty for one moment.")
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

    def clean(self):
        data = super().clean()
        start, end = data.get("start_ms"), data.get("end_ms")
        if start is not None and end is not None and end < start:
            self.add_error("end_ms", "The end comes before the start.")
        return data


class NoteForm(forms.Form):
    note = forms.CharField(max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2}),
                           validators=[multi_line_text])


class AddendumForm(forms.Form):
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), validators=[multi_line_text])
