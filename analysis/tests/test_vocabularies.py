"""The risk vocabulary is defined once (analysis.engine.schemas.RISK_LEVELS); everything that
lists, ranks or constrains risks follows it."""

from typing import get_args

from analysis.engine import schemas
from analysis.models import Finding, Risk


def test_the_database_choices_and_the_answer_schema_are_the_engines_risk_levels():
    assert tuple(Risk.values) == schemas.RISK_LEVELS
    assert tuple(choice for choice, _ in Finding._meta.get_field("risk").choices) == schemas.RISK_LEVELS
    for model in (schemas.Finding, schemas.LiveFinding):
        assert get_args(model.model_fields["risk"].annotation) == schemas.RISK_LEVELS


def test_ranks_run_lowest_to_highest_and_the_spoken_order_is_highest_first():
    assert [schemas.RISK_RANK[r] for r in schemas.RISK_LEVELS] == [1, 2, 3]
    assert schemas.RISKS_HIGHEST_FIRST == ("high", "medium", "low")
