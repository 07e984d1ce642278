from aideploy.api.digest import canonical_json, digest_matches, short_digest, spec_digest


def test_digest_ignores_key_order_and_integral_floats() -> None:
    assert spec_digest({"a": 1, "b": {"c": 2.0}}) == spec_digest({"b": {"c": 2}, "a": 1})


def test_digest_changes_with_any_value() -> None:
    assert spec_digest({"replicas": 2}) != spec_digest({"replicas": 3})


def test_canonical_json_is_compact_and_sorted() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'.encode()


def test_digest_format() -> None:
    digest = spec_digest({})
    assert digest.startswith("sha256:") and len(digest) == 7 + 64


def test_digest_matching_table() -> None:
    full = spec_digest({"x": 1})
    hex_part = full.removeprefix("sha256:")
    table = [
        (full, True),
        (hex_part, True),
        (hex_part[:12], True),
        ("sha256:" + hex_part[:12], True),
        (hex_part[:12].upper(), True),
        (hex_part[:11], False),  # too short to bind an approval to one spec
        ("0" * 12, hex_part.startswith("0" * 12)),
        ("", False),
        ("not-a-digest", False),
    ]
    for given, expected in table:
        assert digest_matches(given, full) is expected, given
    assert short_digest(full) == hex_part[:12]
