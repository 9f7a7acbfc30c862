"""Write a run record as a JUnit XML file for CI systems.

Each step becomes one testcase. Failed and timed-out steps get a <failure> with
the end of their log, interrupted steps an <error>, and skipped or not-run steps a
<skipped> element. A step with `allowed_failure` gets a <skipped> of type
"allowed_failure" with the end of its log, and its message starts with "allowed
failure", so that a CI server does not fail the build for it.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seedrun.logtail import excerpt
from seedrun.secrets import RUN_NAME_KEYS, mask
from seedrun.secrets import secret_values as find_secret_values

logger = logging.getLogger(__name__)

FAILURE_TAIL_LINES = 40
# Characters that XML 1.0 does not allow anywhere in a document.
INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
SKIPPED_STATUSES = ("skipped", "not_run")
FAILED_STATUSES = ("failed", "timed_out")


def write_junit(
    run: Mapping[str, Any],
    run_dir: Path,
    path: Path,
    *,
    secret_values: Sequence[str] | None = None,
) -> None:
    """Write the JUnit XML of a run to path atomically (a temporary file, then a rename).

    secret_values defaults to the secrets found in this process's environment,
    including the variables named in the run's `mask_env`.
    """
    if secret_values is None:
        secret_values = find_secret_values(os.environ, run.get("mask_env") or [])
    suite = _testsuite(run, run_dir, secret_values)
    root = ET.Element("testsuites", _suite_counts(suite))
    root.append(suite)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as output:
            ET.ElementTree(root).write(output, encoding="utf-8", xml_declaration=True)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.debug("wrote JUnit XML for run %s to %s", run.get("run_id"), path)


def xml_text(value: object, secret_values: Sequence[str] = ()) -> str:
    """Return value as masked text without the characters that XML 1.0 forbids."""
    return INVALID_XML_CHARS.sub("", mask(str(value), secret_values))


def _testsuite(run: Mapping[str, Any], run_dir: Path, secret_values: Sequence[str]) -> ET.Element:
    # Names of the run, its steps and phases stay unmasked, as in run.json (see secrets.RUN_NAME_KEYS).
    pipeline = xml_text(run.get("pipeline", ""))
    cases = [_testcase(pipeline, step, run_dir, secret_values) for step in run.get("steps", [])]
    suite = ET.Element("testsuite", {"name": pipeline})
    suite.append(_properties(run, secret_values))
    suite.extend(cases)
    suite.attrib.update(_suite_counts(suite))
    suite.set("timestamp", xml_text(run.get("started_at") or ""))
    suite.set("hostname", xml_text(run.get("host") or "", secret_values))
    return suite


def _properties(run: Mapping[str, Any], secret_values: Sequence[str]) -> ET.Element:
    properties = ET.Element("properties")
    for key in ("run_id", "selection", "status", "pipeline_sha256"):
        value = run.get(key)
        if value is not None:
            masked_with = () if key in RUN_NAME_KEYS else secret_values
            ET.SubElement(properties, "property", name=key, value=xml_text(value, masked_with))
    return properties


def _suite_counts(element: ET.Element) -> dict[str, str]:
    cases = list(element.iter("testcase"))
    total_time = sum(float(case.get("time", "0")) for case in cases)
    return {
        "tests": str(len(cases)),
        "failures": str(sum(1 for case in cases if case.find("failure") is not None)),
        "errors": str(sum(1 for case in cases if case.find("error") is not None)),
        "skipped": str(sum(1 for case in cases if case.find("skipped") is not None)),
        "time": f"{total_time:.3f}",
    }


def _testcase(
    pipeline: str, step: Mapping[str, Any], run_dir: Path, secret_values: Sequence[str]
) -> ET.Element:
    phase = step.get("phase")
    classname = f"{pipeline}/{xml_text(phase)}" if phase else pipeline
    case = ET.Element("testcase", {
        "classname": classname,
        "name": xml_text(step["name"]),
        "time": f"{float(step.get('duration_s') or 0):.3f}",
    })
    outcome = _outcome_element(step, run_dir, secret_values)
    if outcome is not None:
        case.append(outcome)
    return case


def _outcome_element(
    step: Mapping[str, Any], run_dir: Path, secret_values: Sequence[str]
) -> ET.Element | None:
    status = step.get("status")
    if status in FAILED_STATUSES and step.get("allowed_failure"):
        # Counted as a failure, a step with on_failure = "ignore" would fail the
        # CI build of a run that succeeded. Test runners report an expected
        # failure (pytest's xfail) as skipped, so this does the same.
        element = ET.Element("skipped", {"message": _failure_message(step, secret_values), "type": "allowed_failure"})
        element.text = _log_tail(step, run_dir, secret_values)
        return element
    if status in FAILED_STATUSES:
        element = ET.Element("failure", {"message": _failure_message(step, secret_values), "type": status})
        element.text = _log_tail(step, run_dir, secret_values)
        return element
    if status == "interrupted":
        return ET.Element("error", {"message": "interrupted before it finished", "type": "interrupted"})
    if status in SKIPPED_STATUSES:
        reason = step.get("reason") or status.replace("_", " ")
        return ET.Element("skipped", {"message": xml_text(reason, secret_values)})
    if status != "succeeded":
        return ET.Element("skipped", {"message": f"did not finish (status {xml_text(status)})"})
    return None


def _failure_message(step: Mapping[str, Any], secret_values: Sequence[str]) -> str:
    if step.get("status") == "timed_out":
        message = "timed out"
    elif step.get("signal"):
        message = f"killed by {step['signal']}"
    elif step.get("exit_code") is None:
        # No exit code: the step ended without its command's, as when its step runner died.
        message = step.get("reason") or "failed"
    else:
        message = f"exit code {step.get('exit_code')}"
    attempts = step.get("attempts") or 1
    if attempts > 1:
        message += f" after {attempts} attempts"
    if step.get("allowed_failure"):
        message = f"allowed failure: {message}"
    return xml_text(message, secret_values)


def _log_tail(step: Mapping[str, Any], run_dir: Path, secret_values: Sequence[str]) -> str:
    if not step.get("log"):
        return "no log recorded"
    found = excerpt(
        run_dir / step["log"],
        tail_lines=FAILURE_TAIL_LINES,
        head_lines=0,
        secret_values=secret_values,
    )
    text = found.note or "\n".join(found.lines)
    return xml_text(text, secret_values)
