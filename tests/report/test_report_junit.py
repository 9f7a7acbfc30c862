"""Tests for the JUnit XML written from a run record."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report_fixtures import SECRET, sample_run

from seedrun.junit import write_junit

MakeRun = Callable[..., tuple[dict[str, Any], Path]]


def cases_by_name(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {case.get("name", ""): case for case in root.iter("testcase")}


def test_junit_one_testcase_per_step(make_run: MakeRun, tmp_path: Path) -> None:
    run, run_dir = make_run()
    output = tmp_path / "out" / "junit.xml"
    write_junit(run, run_dir, output, secret_values=[SECRET])
    root = ET.parse(output).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "vendor-sync"
    assert suite.get("tests") == str(len(run["steps"]))
    # seed-keystone failed with on_failure = "ignore": skipped, not a failure.
    assert suite.get("failures") == "2"
    assert suite.get("skipped") == "3"
    cases = cases_by_name(output)
    assert set(cases) == {step["name"] for step in run["steps"]}
    assert cases["seed-meyer"].get("classname") == "vendor-sync/vendors"
    assert cases["report-upload"].get("classname") == "vendor-sync"
    assert cases["seed-meyer"].get("time") == "252.100"


def test_junit_failures_and_skips(make_run: MakeRun, tmp_path: Path) -> None:
    run, run_dir = make_run()
    output = tmp_path / "junit.xml"
    write_junit(run, run_dir, output, secret_values=[SECRET])
    cases = cases_by_name(output)
    failure = cases["seed-quadratec"].find("failure")
    assert failure is not None
    assert failure.get("message") == "exit code 1 after 2 attempts"
    assert "Traceback (most recent call last):" in (failure.text or "")
    timed_out = cases["seed-turn14"].find("failure")
    assert timed_out is not None
    assert timed_out.get("type") == "timed_out"
    assert cases["seed-keystone"].find("failure") is None
    allowed = cases["seed-keystone"].find("skipped")
    assert allowed is not None
    assert allowed.get("type") == "allowed_failure"
    assert allowed.get("message", "").startswith("allowed failure: ")
    skipped = cases["pair-quadratec"].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "needs seed-quadratec, which failed"
    assert cases["report-upload"].find("skipped") is not None
    assert list(cases["seed-meyer"]) == []


def test_junit_masks_secrets(make_run: MakeRun, tmp_path: Path) -> None:
    run, run_dir = make_run()
    output = tmp_path / "junit.xml"
    write_junit(run, run_dir, output, secret_values=[SECRET])
    text = output.read_text(encoding="utf-8")
    assert SECRET not in text
    assert "Client Error for token ***" in text


def test_junit_masks_environment_secrets(make_run: MakeRun, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("VENDOR_CREDENTIAL", SECRET)
    run, run_dir = make_run()
    output = tmp_path / "junit.xml"
    write_junit(run, run_dir, output)
    assert SECRET not in output.read_text(encoding="utf-8")


def test_junit_valid_with_control_characters(make_run: MakeRun, tmp_path: Path) -> None:
    run, run_dir = make_run()
    run["steps"][2]["name"] = "seed-\x01quadratec"
    run["steps"][2]["log"] = "hostile.log"
    (run_dir / "hostile.log").write_bytes(
        b"nul \x00 bell \x07 escape \x1b[31m vt \x0b ff \x0c bad \xff noncharacter \xef\xbf\xbe\n"
    )
    output = tmp_path / "junit.xml"
    write_junit(run, run_dir, output)
    cases = cases_by_name(output)
    failure = cases["seed-quadratec"].find("failure")
    assert failure is not None
    assert "nul ␀ bell ␇ escape" in (failure.text or "")
    assert "\ufffe" not in (failure.text or "")


def test_junit_interrupted_is_error(make_run: MakeRun, tmp_path: Path) -> None:
    run, run_dir = make_run()
    run["steps"][1]["status"] = "interrupted"
    output = tmp_path / "junit.xml"
    write_junit(run, run_dir, output)
    error = cases_by_name(output)["seed-meyer"].find("error")
    assert error is not None
    assert error.get("type") == "interrupted"


def test_junit_missing_log_and_no_temp_files(make_run: MakeRun, tmp_path: Path) -> None:
    run, run_dir = make_run(logs=False)
    output = tmp_path / "reports" / "junit.xml"
    write_junit(run, run_dir, output)
    failure = cases_by_name(output)["seed-quadratec"].find("failure")
    assert failure is not None
    assert (failure.text or "").startswith("log not found")
    assert [path.name for path in output.parent.iterdir()] == ["junit.xml"]


def test_junit_masks_failure_reason(make_run: MakeRun, tmp_path: Path) -> None:
    # Without an exit code or a signal, the message is the recorded reason.
    run = sample_run()
    quadratec = run["steps"][2]
    quadratec.update(exit_code=None, attempts=1,
                     reason=f"seedrun's step runner failed: OSError: cannot open /srv/{SECRET}/feed.csv")
    run, run_dir = make_run(run)
    output = tmp_path / "junit.xml"
    write_junit(run, run_dir, output, secret_values=[SECRET])
    failure = cases_by_name(output)["seed-quadratec"].find("failure")
    assert failure is not None
    assert failure.get("message") == "seedrun's step runner failed: OSError: cannot open /srv/***/feed.csv"
    assert SECRET not in output.read_text(encoding="utf-8")
