"""conda's binary relocation rule, including growth into the placeholder's padding and nothing beyond."""

import pytest

from osl_hooks.engine.relocate import PrefixFile, RelocationError, check, relocate

OLD = "/opt/osl/envs/geo"
NEW_SHORT = "/home/u/envs/geo"
NEW_LONG = "/home/jovyan/.local/envs/geo"
PLACEHOLDER_LENGTH = 255


def binary(prefix: str, padding: int) -> bytes:
    """A binary as conda installs it: header, C strings at `prefix` padded by `padding` NULs, a trailer."""
    return (
        b"\x7fELF\x02\x01\x00"
        + prefix.encode()
        + b"/share/gdal\0"
        + b"\0" * padding
        + b"\x01\x02"
        + prefix.encode()
        + b"/lib\0"
        + b"\0" * padding
        + b"TRAILER"
    )


def test_shorter_prefix_is_nul_padded_and_size_kept(tmp_path):
    (tmp_path / "lib.so").write_bytes(binary(OLD, 0))
    relocate(tmp_path, [PrefixFile("lib.so", "binary")], OLD, NEW_SHORT)
    data = (tmp_path / "lib.so").read_bytes()
    assert len(data) == len(binary(OLD, 0))
    assert NEW_SHORT.encode() + b"/share/gdal\0\0" in data and OLD.encode() not in data
    assert data.endswith(b"TRAILER")


def test_longer_prefix_grows_into_recorded_placeholder_padding(tmp_path):
    padding = PLACEHOLDER_LENGTH - len(OLD)
    original = binary(OLD, padding)
    (tmp_path / "lib.so").write_bytes(original)
    files = [PrefixFile("lib.so", "binary", PLACEHOLDER_LENGTH)]
    check(tmp_path, files, OLD, NEW_LONG)
    relocate(tmp_path, files, OLD, NEW_LONG)
    data = (tmp_path / "lib.so").read_bytes()
    assert len(data) == len(original)
    assert NEW_LONG.encode() + b"/share/gdal\0" in data and NEW_LONG.encode() + b"/lib\0" in data
    assert data.index(b"\x01\x02") == original.index(b"\x01\x02"), "the next field must not move"
    # and back again: relocation is repeatable, the region never shrinks
    relocate(tmp_path, files, NEW_LONG, OLD)
    assert (tmp_path / "lib.so").read_bytes() == original


def test_nuls_that_are_not_placeholder_padding_are_never_used(tmp_path):
    # Same bytes, but nothing records a longer placeholder: the NULs may be another field's zeros.
    (tmp_path / "lib.so").write_bytes(binary(OLD, 40))
    with pytest.raises(RelocationError, match="Bake the env at a prefix at least as long"):
        check(tmp_path, [PrefixFile("lib.so", "binary")], OLD, NEW_LONG)


def test_recorded_placeholder_without_real_padding_is_refused(tmp_path):
    (tmp_path / "lib.so").write_bytes(binary(OLD, 2))
    with pytest.raises(RelocationError):
        check(tmp_path, [PrefixFile("lib.so", "binary", PLACEHOLDER_LENGTH)], OLD, NEW_LONG)


def test_text_files_have_every_occurrence_replaced(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/tool").write_text(f"#!{OLD}/bin/python\nDATA={OLD}/share:{OLD}/lib\n")
    assert relocate(tmp_path, [PrefixFile("bin/tool", "text")], OLD, NEW_LONG) == 1
    assert (tmp_path / "bin/tool").read_text() == f"#!{NEW_LONG}/bin/python\nDATA={NEW_LONG}/share:{NEW_LONG}/lib\n"
