"""Tests for finding and masking secret values."""

from __future__ import annotations

from seedrun.secrets import MASK, mask, mask_bytes, mask_env, mask_tree, secret_values


def test_secret_values_matches_name_parts() -> None:
    env = {
        "VENDOR_API_TOKEN": "tok-123456",
        "db_password": "hunter22",
        "SSH_PASSPHRASE": "correct horse",
        "AWS_SECRET_ACCESS_KEY": "AKIAxyz",
        "Authorization_Header": "Bearer abc",
        "HOME": "/root",
        "PATH": "/usr/bin",
    }
    found = secret_values(env, [])
    assert "tok-123456" in found
    assert "hunter22" in found
    assert "correct horse" in found
    assert "AKIAxyz" in found
    assert "Bearer abc" in found
    assert "/root" not in found
    assert "/usr/bin" not in found


def test_secret_values_listed_and_short() -> None:
    env = {"VENDOR_CREDENTIAL": "cred-value", "API_KEY": "abc", "OTHER": "visible"}
    found = secret_values(env, ["VENDOR_CREDENTIAL"])
    assert found == ["cred-value"]


def test_secret_values_longest_first() -> None:
    env = {"A_TOKEN": "abcd", "B_TOKEN": "abcdefgh", "C_TOKEN": "abcd"}
    assert secret_values(env, []) == ["abcdefgh", "abcd"]


def test_mask_replaces_every_occurrence() -> None:
    text = "token=s3cr3t-value and again s3cr3t-value"
    assert mask(text, ["s3cr3t-value"]) == f"token={MASK} and again {MASK}"


def test_mask_longer_secret_first() -> None:
    assert mask("abcdefgh", ["abcd", "abcdefgh"]) == MASK


def test_mask_ignores_short_values() -> None:
    assert mask("on and off", ["on", ""]) == "on and off"


def test_mask_env_hides_secret_names() -> None:
    masked = mask_env({"API_TOKEN": "x" * 10, "LANG": "C.UTF-8", "MY_CRED": "c" * 8}, ["MY_CRED"])
    assert masked == {"API_TOKEN": MASK, "LANG": "C.UTF-8", "MY_CRED": MASK}


def test_mask_bytes_slice_hides_secret_across_cut() -> None:
    data = b"prefix " + b"supersecret" + b" suffix"
    # Cutting in the middle of the secret must not show its first characters.
    shown = mask_bytes(data, ["supersecret"], 0, 10)
    assert b"sup" not in shown
    assert shown == b"prefix ***"
    starting_inside = mask_bytes(data, ["supersecret"], 10, len(data))
    assert b"ersecret" not in starting_inside
    assert starting_inside == b"*** suffix"


def test_mask_tree_masks_nested_strings() -> None:
    tree = {"command": "curl -H token:abcdef12", "steps": [{"reason": "abcdef12 failed"}], "n": 3}
    masked = mask_tree(tree, ["abcdef12"])
    assert masked == {"command": "curl -H token:***", "steps": [{"reason": "*** failed"}], "n": 3}
