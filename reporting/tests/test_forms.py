"""From a submitted report form to report data (reporting.forms): values coerced to the
schema's types, rows renumbered in order, what the form does not carry kept."""

from django.http import QueryDict

from reporting import forms
from reporting.schema import parse


def post(**values) -> QueryDict:
    q = QueryDict(mutable=True)
    for key, value in values.items():
        q.setlist(key.replace("__", "."), value if isinstance(value, list) else [value])
    return q


def test_it_coerces_scores_sizes_and_yes_no_to_the_schemas_types():
    data, errors = forms.parse_post("colonoscopy", post(bbps_right="2", asa_class="", polyps__0__size_mm="6,5",
                                                        polyps__0__retrieved="no", polyps__0__histology=""), {})
    assert errors == {}
    assert data["bbps_right"] == 2 and data["asa_class"] is None and data["bbps_left"] is None
    assert data["polyps"] == [{"size_mm": 6.5, "location": None, "paris": None, "nice": None, "resection": None,
                               "retrieved": False, "jar": ""}]
    assert parse("colonoscopy", data).polyps[0].histology == "pending"  # left to the schema's default


def test_it_refuses_a_size_that_is_not_a_number_on_that_field():
    _, errors = forms.parse_post("colonoscopy", post(polyps__2__size_mm="big"), {})
    assert errors == {"polyps.0.size_mm": "Enter a number."}  # renumbered: the first row


def test_it_renumbers_rows_in_order_and_leaves_out_the_removed_one():
    data, _ = forms.parse_post("upper_gi", post(ulcers__9__forrest="III", ulcers__2__forrest="Ia",
                                                ulcers__5__forrest="IIb", remove_row="ulcers.5"), {})
    assert [u["forrest"] for u in data["ulcers"]] == ["Ia", "III"]


def test_it_keeps_what_the_form_does_not_carry():
    stored = {"surveillance": {"chosen_months": 36, "confirmed": True}, "schema_version": 1}
    data, _ = forms.parse_post("colonoscopy", post(asa_class="I"), stored)
    assert data["surveillance"] == stored["surveillance"] and data["asa_class"] == "I"


def test_it_names_fields_by_the_labels_people_read():
    assert forms.error_label("colonoscopy", "bbps_left") == "Bowel preparation (BBPS) left colon"
    assert forms.error_label("colonoscopy", "polyps.1.size_mm") == "Polyp 2 size (mm)"
    assert forms.error_label("bronchoscopy", "samples.0.site") == "Sample 1 site"


def test_a_bound_form_shows_values_as_labels_for_readers():
    (indication, *_), = [s["fields"] for s in forms.bind("colonoscopy", {"indication_kind": "screening"}, {})
                         if s["key"] == "indication"]
    assert indication.value == "screening" and indication.value_label == "Screening"
