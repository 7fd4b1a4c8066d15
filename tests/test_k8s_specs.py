"""Every example spec in specs/ converges, alone and through each of its scenarios, with its
invariants and expectations holding, and a second run from the fixed point changes nothing."""

from pathlib import Path

import pytest

from engine.check import load_program
from engine.fixpoint import reconcile

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.konv"))


def cases():
    for path in SPECS:
        program = load_program([path])
        yield pytest.param(path, None, id=f"{path.stem}")
        for name in program.scenarios:
            yield pytest.param(path, name, id=f"{path.stem}-{name}")


@pytest.mark.parametrize(("path", "scenario"), list(cases()))
def test_spec_converges_with_its_expectations_holding(path, scenario):
    program = load_program([path])
    result = reconcile(program, scenario=program.scenarios[scenario] if scenario else None)
    assert result.converged, (result.reason, result.cycle)
    assert result.violations == ()


def test_demo_losing_a_worker_keeps_three_ready_web_pods_elsewhere():
    program = load_program([Path(__file__).parent.parent / "specs" / "demo.konv"])
    result = reconcile(program, scenario=program.scenarios["lose a worker"])
    web = [o for o in result.objects if o["kind"] == "Pod" and o["labels"].get("app") == "web"]
    live = [p for p in web if not p["deleting"]]
    assert len(live) == 3 and all(p["ready"] and p["node"] not in ("worker-1", "control-plane") for p in live)
