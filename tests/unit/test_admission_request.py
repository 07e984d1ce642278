"""The admission request's namespace wins over its object's (issue 11, attack 4)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aideploy.admission.request import with_request_namespace


@pytest.mark.parametrize(
    ("request_part", "expected_object_ns", "expected_old_ns"),
    [
        ({"namespace": "other", "object": {"metadata": {"name": "a"}}}, "other", None),
        (
            {
                "namespace": "other",
                "object": {"metadata": {"name": "a", "namespace": "sec"}},
                "oldObject": {"metadata": {"name": "a", "namespace": "sec"}},
            },
            "other",
            "other",
        ),
        ({"namespace": "other", "object": {}}, "other", None),
        ({"object": {"metadata": {"name": "a", "namespace": "sec"}}}, "sec", None),
    ],
)
def test_objects_take_the_request_namespace(
    request_part: dict[str, Any], expected_object_ns: str, expected_old_ns: str | None
) -> None:
    review = {"apiVersion": "admission.k8s.io/v1", "request": request_part}
    before = copy.deepcopy(review)
    fixed = with_request_namespace(review)
    assert fixed["request"]["object"]["metadata"]["namespace"] == expected_object_ns
    old = fixed["request"].get("oldObject")
    assert (old["metadata"]["namespace"] if old else None) == expected_old_ns
    assert review == before, "the review as received is left alone"


def test_a_review_without_a_request_is_returned_as_is() -> None:
    assert with_request_namespace({"kind": "AdmissionReview"}) == {"kind": "AdmissionReview"}
