import pytest

from xietong.core.errors import Conflict, Forbidden
from xietong.core.workflow import Transition, Workflow


def _flow() -> Workflow:
    return Workflow(
        name="demo",
        states=("draft", "submitted", "done"),
        initial="draft",
        transitions=[
            Transition("draft", "submit", "submitted", frozenset({"applicant"})),
            Transition(
                "submitted",
                "finish",
                "done",
                frozenset({"expert"}),
                guard=lambda subject: None if subject else "report missing",
            ),
        ],
    )


def test_every_cell_of_the_table() -> None:
    flow = _flow()
    roles = {"applicant", "expert"}
    for state in flow.states:
        for action in flow.actions:
            cell = flow.find(state, action)
            if cell is None:
                with pytest.raises(Conflict):
                    flow.apply(state, action, roles, subject=True)
            else:
                assert flow.apply(state, action, cell.roles, subject=True).target == cell.target
                with pytest.raises(Forbidden):
                    flow.apply(state, action, {"nobody"}, subject=True)


def test_guard_refusal_is_a_conflict() -> None:
    with pytest.raises(Conflict) as info:
        _flow().apply("submitted", "finish", {"expert"}, subject=None)
    assert info.value.code == "guard_failed"


def test_duplicate_cells_and_unknown_states_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Workflow(
            "x",
            ("a", "b"),
            "a",
            [Transition("a", "go", "b", frozenset()), Transition("a", "go", "a", frozenset())],
        )
    with pytest.raises(ValueError, match="unknown state"):
        Workflow("x", ("a",), "a", [Transition("a", "go", "zzz", frozenset())])


def test_markdown_lists_every_transition() -> None:
    text = _flow().to_markdown()
    assert "| draft | submit | submitted | applicant |" in text
    assert "| submitted | finish | done | expert |" in text
