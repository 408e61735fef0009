"""One walk over CloudFormation's intrinsic functions serves the rehearsal and the Provider framework's template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from certfleet.testing.assembly import Deployed, ResourceKey, StackArtifact, StackKey
from certfleet.testing.framework import FrameworkError, _TemplateValues
from certfleet.testing.resolver import INVENTED, _Resolver

FUNCTION = {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "on-event"}}


@dataclass
class _Nothing:
    """A rehearsal with nothing deployed yet."""

    resources: dict[ResourceKey, Deployed] = field(default_factory=dict)
    outputs: dict[StackKey, dict[str, Any]] = field(default_factory=dict)
    exports: dict[tuple[str, str, str], Any] = field(default_factory=dict)


def test_the_rehearsal_resolves_string_functions_and_walks_other_maps() -> None:
    """GIVEN a stack with nothing deployed WHEN Join, Sub, Select and Split over pseudo parameters are resolved
    THEN their values; an unknown resource gets an invented value; Fn::If and a plain one-key map are walked."""
    artifact = StackArtifact("a", "Web", "111122223333", "eu-west-1", {"Resources": {}}, [])
    resolver = _Resolver(_Nothing(), artifact)
    value = {
        "Join": {"Fn::Join": ["-", [{"Ref": "AWS::Region"}, "x"]]},
        "Sub": {"Fn::Sub": "${AWS::AccountId}/${Missing.Arn}"},
        "Select": {"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]},
        "If": {"Fn::If": ["Cond", {"Ref": "AWS::Partition"}, "no"]},
        "Map": {"invented": {"Ref": "AWS::StackName"}},
    }
    assert resolver.resolve(value) == {
        "Join": "eu-west-1-x",
        "Sub": f"111122223333/{INVENTED}Web/Missing.Arn",
        "Select": "b",
        "If": {"Fn::If": ["Cond", "aws", "no"]},
        "Map": {"invented": "Web"},
    }


def test_a_provider_template_resolves_arns_and_refuses_what_it_does_not_model() -> None:
    """GIVEN a Provider's template WHEN its values are resolved THEN a function's Ref, GetAtt Arn and a Join or Sub
    over them give its ARN; any other GetAtt, intrinsic or one-key map is a FrameworkError."""
    values = _TemplateValues({"OnEvent": FUNCTION}, "111122223333", "eu-west-1")
    arn = "arn:aws:lambda:eu-west-1:111122223333:function:on-event"
    assert values.resolve({"Fn::GetAtt": ["OnEvent", "Arn"]}) == arn
    assert values.resolve({"Fn::Join": ["", [{"Ref": "OnEvent"}, ":live"]]}) == f"{arn}:live"
    assert values.resolve({"Fn::Sub": "${OnEvent.Arn}"}) == arn
    assert values.function_id(arn) == "OnEvent"
    for unmodelled in ({"Fn::GetAtt": "OnEvent.Role"}, {"Fn::ImportValue": "x"}, {"Plain": "map"}):
        with pytest.raises(FrameworkError, match="cannot resolve"):
            values.resolve(unmodelled)
