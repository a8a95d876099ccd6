"""Signed, attributable sign-offs: Ed25519 keys per organisation, quorum, and every forgery
of a transcript that a co-reviewer with write access could try, each one detected."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from negotiation.engine import run_scenario
from negotiation.lifecycle import SignOffError, Status, sign_off, sign_offs, transcript_status
from negotiation.scenario import load_scenario, shipped_scenarios_dir
from negotiation.signing import LocalKey, fingerprint, new_key, read_signatories, sign
from negotiation.transcript import canonical_json, event_hash, verify
from tests.conftest import REPO

NEGOTIATE = Path(sys.executable).with_name("negotiate")


def negotiate(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "XDG_CONFIG_HOME": str(config)}
    return subprocess.run([str(NEGOTIATE), *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)


def signed_scenario(folder: Path, keys: dict[str, list[LocalKey]],
                    quorum: dict[str, int] | None = None) -> Path:
    """rd-joint-venture with ``keys`` declared as its signatories."""
    data = yaml.safe_load((shipped_scenarios_dir() / "rd-joint-venture.yaml").read_text())
    data["signatories"] = {
        org: {"keys": [{"name": k.signatory.name, "public_key": k.signatory.public_key}
                       for k in org_keys], "quorum": (quorum or {}).get(org, 1)}
        for org, org_keys in keys.items()}
    path = folder / "signed-venture.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def agreed_run(scenario_file: Path, folder: Path) -> Path:
    result = anyio.run(lambda: run_scenario(load_scenario(scenario_file), seed=0,
                                            out_dir=folder))
    assert result.status == "agreement"
    assert result.path is not None
    return result.path


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, list[LocalKey]]:
    folder = tmp_path / "config" / "negotiate" / "keys"
    return {"voltaic": [new_key("voltaic", "Vera Volt", folder)],
            "kestrel": [new_key("kestrel", "Kit Kestrel", folder),
                        new_key("kestrel", "Kim Kestrel", folder)]}


@pytest.fixture
def run_file(tmp_path: Path, keys: dict[str, list[LocalKey]]) -> Path:
    return agreed_run(signed_scenario(tmp_path, keys), tmp_path / "runs")


def events_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rewrite(path: Path, events: list[dict[str, Any]]) -> None:
    """Re-chain ``events`` consistently (new prev_hash and hash on every line): what a
    forger with write access and the published format can always do."""
    head = "0" * 64
    lines = []
    for seq, event in enumerate(events):
        event = {k: v for k, v in event.items() if k != "hash"}
        event["seq"], event["prev_hash"] = seq, head
        head = event["hash"] = event_hash(event)
        lines.append(canonical_json(event))
    path.write_text("\n".join(lines) + "\n")


def sign_all(path: Path, keys: dict[str, list[LocalKey]], *, approve: bool = True) -> None:
    sign_off(path, approve=approve, org="voltaic", key=keys["voltaic"][0].private_key())
    sign_off(path, approve=approve, org="kestrel", key=keys["kestrel"][0].private_key())


# --- keys -------------------------------------------------------------------------------


def test_keys_new_keeps_the_private_key_private_and_writes_the_public_record(
        tmp_path: Path) -> None:
    config = tmp_path / "config"
    record = tmp_path / "ada.signatory.yaml"
    done = negotiate("keys", "new", "--org", "vendor", "--name", "Ada Lovelace", "--out",
                     str(record), config=config)
    assert done.returncode == 0, done.stderr
    [private] = list((config / "negotiate" / "keys").glob("*.key"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    [signatory] = read_signatories(record)
    assert (signatory.org, signatory.name) == ("vendor", "Ada Lovelace")
    assert signatory.fingerprint == fingerprint(signatory.public_key)
    assert signatory.fingerprint in done.stdout
    assert signatory.public_key in done.stdout  # the block to paste into the scenario
    listed = negotiate("keys", "list", config=config)
    assert "Ada Lovelace" in listed.stdout and signatory.fingerprint[:16] in listed.stdout


def test_keys_new_refuses_an_organisation_id_that_cannot_be_one(tmp_path: Path) -> None:
    done = negotiate("keys", "new", "--org", "Not An Id", "--name", "X",
                     config=tmp_path / "c")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "org" in done.stderr


# --- ratification ------------------------------------------------------------------------


def test_an_agreement_is_ratified_only_when_every_organisation_has_signed(
        run_file: Path, keys: dict[str, list[LocalKey]]) -> None:
    first = sign_off(run_file, approve=True, org="voltaic",
                     key=keys["voltaic"][0].private_key())
    assert first["status"] == "pending sign-off"
    assert transcript_status(run_file)[0] is Status.PENDING
    assert sign_offs(events_of(run_file)).missing() == {"kestrel": 1}
    second = sign_off(run_file, approve=True, org="kestrel",
                      key=keys["kestrel"][1].private_key())
    assert second["status"] == "ratified"
    assert transcript_status(run_file)[0] is Status.RATIFIED
    signed = sign_offs(events_of(run_file))
    assert [(s.org, s.signer) for s in signed.signatures] == [("voltaic", "Vera Volt"),
                                                              ("kestrel", "Kim Kestrel")]


def test_one_declared_rejection_rejects(run_file: Path,
                                        keys: dict[str, list[LocalKey]]) -> None:
    sign_off(run_file, approve=True, org="voltaic", key=keys["voltaic"][0].private_key())
    event = sign_off(run_file, approve=False, org="kestrel",
                     key=keys["kestrel"][0].private_key(), comment="exit clause too loose")
    assert event["status"] == "rejected"
    assert transcript_status(run_file)[0] is Status.REJECTED
    with pytest.raises(SignOffError, match="already rejected"):
        sign_off(run_file, approve=True, org="kestrel", key=keys["kestrel"][1].private_key())


def test_a_quorum_needs_that_many_different_signatories(
        tmp_path: Path, keys: dict[str, list[LocalKey]]) -> None:
    path = agreed_run(signed_scenario(tmp_path, keys, quorum={"kestrel": 2}), tmp_path / "r")
    sign_all(path, keys)
    assert transcript_status(path)[0] is Status.PENDING  # kestrel: 1 of 2
    with pytest.raises(SignOffError, match="already signed"):
        sign_off(path, approve=True, org="kestrel", key=keys["kestrel"][0].private_key())
    sign_off(path, approve=True, org="kestrel", key=keys["kestrel"][1].private_key())
    assert transcript_status(path)[0] is Status.RATIFIED


def test_only_a_declared_key_of_that_organisation_can_sign(
        run_file: Path, keys: dict[str, list[LocalKey]], tmp_path: Path) -> None:
    before = run_file.read_bytes()
    stranger = new_key("voltaic", "Mallory", tmp_path / "other")
    with pytest.raises(SignOffError, match="not a declared signatory of voltaic"):
        sign_off(run_file, approve=True, org="voltaic", key=stranger.private_key())
    with pytest.raises(SignOffError, match="not a declared signatory of voltaic"):
        sign_off(run_file, approve=True, org="voltaic", key=keys["kestrel"][0].private_key())
    with pytest.raises(SignOffError, match="declares signatories"):
        sign_off(run_file, approve=True, reviewer="Anyone")
    assert run_file.read_bytes() == before


def test_review_signs_with_the_local_key_and_prints_who_and_the_head(
        tmp_path: Path, run_file: Path) -> None:
    config = tmp_path / "config"
    voltaic = negotiate("review", str(run_file), "--approve", "--as", "voltaic",
                        "--comment", "fair", config=config)
    assert voltaic.returncode == 0, voltaic.stderr
    assert "APPROVED by Vera Volt for voltaic" in voltaic.stdout
    assert "Status: pending sign-off" in voltaic.stdout
    ambiguous = negotiate("review", str(run_file), "--approve", "--as", "kestrel",
                          config=config)
    assert ambiguous.returncode == 2 and "2 of your local keys" in ambiguous.stderr
    key = next((config / "negotiate" / "keys").glob("kestrel-kit-*.key"))
    kestrel = negotiate("review", str(run_file), "--approve", "--key", str(key),
                        config=config)
    assert kestrel.returncode == 0, kestrel.stderr
    assert "Status: ratified" in kestrel.stdout
    head = verify(run_file).head_hash
    assert head in kestrel.stdout.replace("\n", "")
    checked = negotiate("verify", str(run_file), "--head", head, config=config)
    assert checked.returncode == 0, checked.stdout
    assert "Vera Volt" in checked.stdout and "Kit Kestrel" in checked.stdout
    report = negotiate("report", str(run_file), config=config)
    assert report.returncode == 0, report.stderr
    assert "Kit Kestrel" in report.stdout and "approved" in report.stdout
    listing = negotiate("transcripts", str(run_file.parent), config=config)
    assert "ratified" in listing.stdout
    assert "Kit" in listing.stdout and "Kestrel" in listing.stdout  # a folded cell


def test_a_scenario_without_signatories_records_unsigned_sign_offs_plainly(
        tmp_path: Path) -> None:
    path = agreed_run(shipped_scenarios_dir() / "rd-joint-venture.yaml", tmp_path)
    event = sign_off(path, approve=True, reviewer="Ada")
    assert event["attributable"] is False
    assert transcript_status(path)[0] is Status.RATIFIED
    shown = negotiate("verify", str(path), config=tmp_path)
    assert "unsigned (not attributable)" in shown.stdout


def test_signatories_must_cover_every_organisation_with_a_reachable_quorum(
        tmp_path: Path, keys: dict[str, list[LocalKey]]) -> None:
    path = signed_scenario(tmp_path, {"kestrel": keys["kestrel"]}, quorum={"kestrel": 3})
    done = negotiate("scenarios", "validate", str(path), config=tmp_path)
    assert done.returncode == 2
    assert "signatories.kestrel.quorum" in done.stderr
    assert "no signatories for ['voltaic']" in done.stderr


# --- forgeries -----------------------------------------------------------------------------


def forged(run_file: Path, change: Any) -> Path:
    events = events_of(run_file)
    change(events)
    rewrite(run_file, events)
    assert verify(run_file).ok  # the chain alone no longer tells
    return run_file


def verify_cli(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return negotiate("verify", str(path), *extra, config=path.parent)


def outcome_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in events if e["type"] == "outcome")


def change_terms(events: list[dict[str, Any]]) -> None:
    outcome_of(events)["agreement"]["terms"]["exit_clause"] = "none"


def change_embedded_scenario(events: list[dict[str, Any]]) -> None:
    events[0]["scenario"]["organizations"][0]["preferences"]["reservation_value"] = 0.0


def insert_move(events: list[dict[str, Any]]) -> None:
    move = next(e for e in events if e["type"] == "move")
    events.insert(2, dict(move))


def flip_decision(events: list[dict[str, Any]]) -> None:
    last = events[-1]
    last["decision"], last["status"] = "reject", "rejected"


@pytest.mark.parametrize("change", [change_terms, change_embedded_scenario, insert_move,
                                    flip_decision])
def test_a_rechained_forgery_of_a_signed_transcript_breaks_its_signatures(
        run_file: Path, keys: dict[str, list[LocalKey]], change: Any) -> None:
    sign_all(run_file, keys)
    forged(run_file, change)
    assert transcript_status(run_file)[0] is Status.TAMPERED
    done = verify_cli(run_file)
    assert done.returncode == 1
    assert "does not verify" in done.stdout or "does not refer" in done.stdout


def test_a_sign_off_replaced_by_a_forgers_key_is_not_a_declared_signatory(
        run_file: Path, keys: dict[str, list[LocalKey]], tmp_path: Path) -> None:
    sign_off(run_file, approve=False, org="voltaic", key=keys["voltaic"][0].private_key())
    events = events_of(run_file)
    rejection = events.pop()  # cut the rejection, then approve in the signer's name
    forger = new_key("voltaic", "Vera Volt", tmp_path / "forger")
    approval = dict(rejection, decision="approve", status="pending sign-off",
                    fingerprint=forger.signatory.fingerprint)
    approval["signature"] = sign(forger.private_key(),
                                 {**approval, "prev_hash": events[-1]["hash"]})
    rewrite(run_file, [*events, approval])
    done = verify_cli(run_file)
    assert done.returncode == 1
    assert "not a declared signatory of 'voltaic'" in done.stdout


def test_a_forged_scenario_with_the_forgers_own_keys_fails_against_trusted_records(
        run_file: Path, keys: dict[str, list[LocalKey]], tmp_path: Path) -> None:
    trusted = tmp_path / "trusted.yaml"
    trusted.write_text(yaml.safe_dump([k.signatory.model_dump() for org_keys in keys.values()
                                       for k in org_keys]))
    forger = {"voltaic": [new_key("voltaic", "Vera Volt", tmp_path / "f")],
              "kestrel": [new_key("kestrel", "Kit Kestrel", tmp_path / "f")]}
    fake = agreed_run(signed_scenario(tmp_path / "f", forger), tmp_path / "fake-runs")
    sign_all(fake, forger)
    assert verify_cli(fake).returncode == 0  # self-consistent: only outside records tell
    done = verify_cli(fake, "--signatories", str(trusted))
    assert done.returncode == 1
    assert "do not" in done.stdout and "forged" in done.stdout
    sign_all(run_file, keys)
    assert verify_cli(run_file, "--signatories", str(trusted)).returncode == 0


def test_dropping_the_last_events_is_caught_by_a_recorded_head(
        run_file: Path, keys: dict[str, list[LocalKey]]) -> None:
    sign_all(run_file, keys)
    head = verify(run_file).head_hash
    lines = run_file.read_text().splitlines(keepends=True)
    run_file.write_text("".join(lines[:-2]))  # both sign-offs gone: looks pending again
    assert verify(run_file).ok
    done = verify_cli(run_file, "--head", head)
    assert done.returncode == 1 and "not in the transcript" in done.stdout


def test_cutting_a_sign_off_and_signing_the_opposite_is_caught_by_a_recorded_head(
        run_file: Path, keys: dict[str, list[LocalKey]]) -> None:
    sign_off(run_file, approve=False, org="voltaic", key=keys["voltaic"][0].private_key())
    head = verify(run_file).head_hash  # what the other parties were told
    lines = run_file.read_text().splitlines(keepends=True)
    run_file.write_text("".join(lines[:-1]))
    sign_all(run_file, keys, approve=True)  # the signer changes their mind, silently
    assert verify_cli(run_file).returncode == 0
    done = verify_cli(run_file, "--head", head)
    assert done.returncode == 1 and "not in the transcript" in done.stdout


def test_an_unsigned_transcript_rewritten_after_the_fact_is_caught_by_a_recorded_head(
        tmp_path: Path) -> None:
    path = agreed_run(shipped_scenarios_dir() / "rd-joint-venture.yaml", tmp_path)
    head = verify(path).head_hash
    forged(path, change_terms)
    done = verify_cli(path, "--head", head)
    assert done.returncode == 1


def test_a_signature_copied_from_another_transcript_does_not_verify(
        tmp_path: Path, keys: dict[str, list[LocalKey]]) -> None:
    scenario = signed_scenario(tmp_path, keys)
    first, second = (agreed_run(scenario, tmp_path / name) for name in ("a", "b"))
    sign_off(first, approve=True, org="voltaic", key=keys["voltaic"][0].private_key())
    copied = events_of(first)[-1]
    events = events_of(second)
    outcome = outcome_of(events)
    copied["agreement_event"] = {"seq": outcome["seq"], "hash": outcome["hash"]}
    rewrite(second, [*events, copied])
    assert transcript_status(second)[0] is Status.TAMPERED


def test_verify_refuses_a_head_that_is_not_a_full_hash(run_file: Path) -> None:
    done = verify_cli(run_file, "--head", "abc")
    assert done.returncode == 2 and "64-character" in done.stderr


# --- the charter ----------------------------------------------------------------------------


def test_the_charter_names_each_signatory_with_their_key_and_who_is_missing(
        run_file: Path, keys: dict[str, list[LocalKey]]) -> None:
    from negotiation.charter import render_html, render_markdown

    sign_off(run_file, approve=True, org="voltaic", key=keys["voltaic"][0].private_key())
    pending = render_markdown(run_file)
    assert "**PENDING SIGN-OFF**" in pending and "signed so far by Vera Volt for voltaic" in pending
    assert "still missing: kestrel (1 more)" in pending
    sign_off(run_file, approve=True, org="kestrel", key=keys["kestrel"][0].private_key())
    ratified = render_markdown(run_file)
    assert "**RATIFIED** by Vera Volt for voltaic" in ratified
    assert "Kit Kestrel for kestrel" in ratified
    for key in (keys["voltaic"][0], keys["kestrel"][0]):
        assert key.signatory.fingerprint in ratified
        assert f"(key `{key.signatory.fingerprint[:16]}`…)" in ratified  # escaped once
    assert "not attributable" not in ratified
    assert verify(run_file).head_hash in ratified  # the head to check it against
    page = render_html(run_file)
    assert "Kit Kestrel" in page and keys["kestrel"][0].signatory.fingerprint in page


def test_no_charter_is_written_for_a_transcript_whose_signature_fails(
        run_file: Path, keys: dict[str, list[LocalKey]]) -> None:
    sign_all(run_file, keys)
    forged(run_file, change_terms)
    done = negotiate("charter", str(run_file), config=run_file.parent)
    assert done.returncode == 2 and "does not verify" in done.stderr
    assert not list(run_file.parent.glob("*.md"))


def test_an_inline_sign_off_waits_for_every_organisation_then_resumes_the_run(
        tmp_path: Path, keys: dict[str, list[LocalKey]]) -> None:
    config = tmp_path / "config"
    scenario = signed_scenario(tmp_path, {"voltaic": keys["voltaic"],
                                          "kestrel": keys["kestrel"][:1]})
    done = negotiate("run", str(scenario), "--signoff", "inline", "-q", "--out",
                     str(tmp_path / "runs"), config=config)
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "runs").glob("*.jsonl")
    first = negotiate("review", str(path), "--approve", "--as", "voltaic", config=config)
    assert first.returncode == 0, first.stderr
    assert "Status: pending sign-off" in first.stdout
    second = negotiate("review", str(path), "--approve", "--as", "kestrel", config=config)
    assert second.returncode == 0, second.stderr
    assert "paused run is resumed" in second.stdout and "Status: ratified" in second.stdout
    assert transcript_status(path)[0] is Status.RATIFIED
    assert negotiate("verify", str(path), config=config).returncode == 0


def test_a_rechained_header_with_an_invalid_scenario_fails_verification_cleanly(
        run_file: Path, keys: dict[str, list[LocalKey]]) -> None:
    sign_all(run_file, keys)
    forged(run_file, lambda events: events[0]["scenario"].pop("issues"))
    done = verify_cli(run_file)
    assert done.returncode == 1, done.stderr
    assert "embedded scenario is not valid" in done.stdout and "Traceback" not in done.stderr
    assert transcript_status(run_file)[0] is Status.TAMPERED


def test_one_key_cannot_sign_for_two_organisations(
        tmp_path: Path, keys: dict[str, list[LocalKey]]) -> None:
    path = signed_scenario(tmp_path, {"voltaic": keys["voltaic"],
                                      "kestrel": keys["voltaic"]})
    done = negotiate("scenarios", "validate", str(path), config=tmp_path)
    assert done.returncode == 2 and "already signs for voltaic" in done.stderr


# --- one party cannot ratify alone (found by an adversarial review) ---------------------------


def drop_kestrel_signatories(events: list[dict[str, Any]]) -> None:
    events[0]["scenario"]["signatories"].pop("kestrel")


def shrink_the_parties(events: list[dict[str, Any]]) -> None:
    outcome_of(events)["agreement"]["parties"] = ["voltaic"]


def lower_own_quorum(events: list[dict[str, Any]]) -> None:
    events[0]["scenario"]["signatories"]["kestrel"]["quorum"] = 1


@pytest.mark.parametrize("change", [drop_kestrel_signatories, shrink_the_parties])
def test_an_edit_before_signing_cannot_let_one_organisation_ratify_alone(
        run_file: Path, keys: dict[str, list[LocalKey]], change: Any) -> None:
    forged(run_file, change)
    with pytest.raises(SignOffError, match="edited"):
        sign_off(run_file, approve=True, org="voltaic", key=keys["voltaic"][0].private_key())
    assert transcript_status(run_file)[0] is not Status.RATIFIED
    done = verify_cli(run_file)
    assert done.returncode == 1 and "edited" in done.stdout


def test_a_lowered_quorum_is_caught_against_the_scenario_you_agreed_to(
        tmp_path: Path, keys: dict[str, list[LocalKey]]) -> None:
    agreed = signed_scenario(tmp_path, keys, quorum={"kestrel": 2})
    path = agreed_run(agreed, tmp_path / "runs")
    forged(path, lower_own_quorum)
    sign_all(path, keys)  # kestrel's one signature now "ratifies"
    assert transcript_status(path)[0] is Status.RATIFIED  # self-consistent after the edit
    done = verify_cli(path, "--signatories", str(agreed))
    assert done.returncode == 1
    assert "asks 1 signature(s) of kestrel, the signatories you gave 2" in done.stdout
    honest = agreed_run(agreed, tmp_path / "honest")
    sign_all(honest, keys)
    sign_off(honest, approve=True, org="kestrel", key=keys["kestrel"][1].private_key())
    assert verify_cli(honest, "--signatories", str(agreed)).returncode == 0


def test_nothing_may_follow_the_decision(run_file: Path,
                                         keys: dict[str, list[LocalKey]]) -> None:
    sign_all(run_file, keys)
    events = events_of(run_file)
    rewrite(run_file, [*events, dict(outcome_of(events))])  # a second outcome, appended
    done = verify_cli(run_file)
    assert done.returncode == 1 and "nothing may follow the decision" in done.stdout


def test_keys_list_believes_no_record_that_names_another_key(tmp_path: Path) -> None:
    config = tmp_path / "config"
    folder = config / "negotiate" / "keys"
    eve, kim = new_key("kestrel", "Eve", folder), new_key("kestrel", "Kim", folder)
    eve.path.with_suffix(".signatory.yaml").write_text(
        kim.path.with_suffix(".signatory.yaml").read_text())
    listed = negotiate("keys", "list", config=config)
    assert listed.stdout.count("Kim") == 1 and "Eve" not in listed.stdout


def test_a_key_readable_by_others_is_refused(run_file: Path, tmp_path: Path) -> None:
    key = next((tmp_path / "config" / "negotiate" / "keys").glob("voltaic-*.key"))
    key.chmod(0o644)
    done = negotiate("review", str(run_file), "--approve", "--key", str(key),
                     config=tmp_path / "config")
    assert done.returncode == 2 and "can be read by other users" in done.stderr


def test_keys_new_refuses_a_symlinked_output_before_making_a_key(tmp_path: Path) -> None:
    config, target = tmp_path / "config", tmp_path / "victim.txt"
    target.write_text("keep me")
    link = tmp_path / "out.yaml"
    link.symlink_to(target)
    done = negotiate("keys", "new", "--org", "vendor", "--name", "Ada", "--out", str(link),
                     config=config)
    assert done.returncode == 2 and "symbolic link" in done.stderr
    assert target.read_text() == "keep me"
    assert not list(config.glob("negotiate/keys/*.key"))
