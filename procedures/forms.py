from django import forms

from .models import ProcedureSession


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
