"""Tests for the prompt catalog (ivr.prompts.catalog) and the builder (ivr.prompts.build)."""

from __future__ import annotations

import array
import dataclasses
import json
import math
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from ivr.prompts import build as builder
from ivr.prompts.catalog import (
    DEFAULT_CATALOG_PATH,
    Catalog,
    CatalogError,
    MissingPromptError,
    Prompt,
    load_catalog,
)

# The ids the call flow and the dialplan use.
FLOW_IDS = (
    "welcome",
    "menu_1",
    "menu_2",
    "menu_3",
    "menu_5",
    "menu_0",
    "menu_repeat",
    "invalid_choice",
    "gentle_prompt",
    "goodbye",
    "loneliness_intro",
    "general_intro",
    "hold_reassurance",
    "counselor_whisper_loneliness",
    "counselor_whisper_general",
    "system_error",
    "service_unavailable",
)

STUDIO = DEFAULT_CATALOG_PATH.parent / "studio"
TOOLS_MISSING = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]


# --------------------------------------------------------------------------- helpers


def read_wav(path: Path) -> tuple[int, int, int, array.array[int]]:
    """(rate, channels, sample width, samples) using only the stdlib."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    samples = array.array("h")
    samples.frombytes(raw)
    if sys.byteorder == "big":
        samples.byteswap()
    return rate, channels, width, samples


def rms_dbfs(samples: array.array[int] | list[int]) -> float:
    if len(samples) == 0:
        return -math.inf
    rms = math.sqrt(math.fsum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


def gated_loudness(samples: array.array[int], rate: int) -> float:
    """An independent gated RMS (BS.1770's gating, no K-weighting): 400 ms blocks every
    100 ms, absolute gate -70 dBFS, relative gate -10 dB below the mean of the rest."""
    block, step = int(0.4 * rate), int(0.1 * rate)
    levels = []
    for i in range(0, max(1, len(samples) - block + 1), step):
        window = samples[i : i + block]
        levels.append(math.fsum(s * s for s in window) / len(window) / 32768**2)
    levels = [m for m in levels if m > 1e-7]
    mean = sum(levels) / len(levels)
    kept = [m for m in levels if m >= mean / 10]
    return 10 * math.log10(sum(kept) / len(kept))


def wav_format_tag(path: Path) -> int:
    """The fmt chunk's format tag: 1 is plain PCM, which Asterisk's format_wav requires."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            return int.from_bytes(data[pos + 8 : pos + 10], "little")
        pos += 8 + size + (size & 1)
    raise AssertionError(f"{path}: no fmt chunk")


def copy_out(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def studio_copy(tmp_path: Path) -> Path:
    studio = tmp_path / "studio"
    if STUDIO.is_dir():
        shutil.copytree(STUDIO, studio)
    else:
        studio.mkdir()
    return studio


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def built(
    tmp_path_factory: pytest.TempPathFactory, catalog: Catalog
) -> tuple[Path, builder.BuildResult]:
    """The real catalog, built once per session. Tests that modify it work on a copy."""
    # Never skip: a missing tool is a missing install step (tools/bootstrap.sh installs both).
    assert not TOOLS_MISSING, f"not installed: {', '.join(TOOLS_MISSING)}"
    out = tmp_path_factory.mktemp("sounds")
    result = builder.build(catalog, out, STUDIO)
    return out, result


# --------------------------------------------------------------------------- catalog


def test_catalog_loads_with_every_flow_prompt(catalog: Catalog) -> None:
    assert isinstance(catalog.version, int) and catalog.version >= 1
    catalog.require(FLOW_IDS)
    for prompt in catalog:
        assert prompt.ko.strip(), prompt.id
        assert prompt.en.strip(), prompt.id
        assert catalog.prompts[prompt.id] is prompt


def test_catalog_is_immutable(catalog: Catalog) -> None:
    with pytest.raises(TypeError):
        catalog.prompts["x"] = Prompt("x", "가", "a")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.version = 99  # type: ignore[misc]


def test_require_lists_every_missing_id(catalog: Catalog) -> None:
    with pytest.raises(MissingPromptError) as info:
        catalog.require(["welcome", "zz_not_there", "menu_9", "welcome"])
    assert info.value.missing == ("menu_9", "zz_not_there")
    message = str(info.value)
    assert "menu_9" in message and "zz_not_there" in message
    assert "welcome" not in message.split(":", 2)[-1]
    with pytest.raises(MissingPromptError, match="nope"):
        catalog["nope"]


def test_invalid_catalog_names_file_and_entries(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(
        "version = 2\n"
        '[Bad-Id]\nko = "안녕"\nen = "hi"\n'
        '[empty_ko]\nko = " "\nen = "x"\n'
        '[digits]\nko = "1번을 누르세요"\nen = "press 1"\n'
        '[swapped]\nko = "hello"\nen = "안녕"\n'
        '[extra]\nko = "안녕"\nen = "hi"\ntone = "warm"\n'
        '[fine]\nko = "안녕하세요"\nen = "hello"\n',
        "utf-8",
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert str(path) in message
    for entry in ("[Bad-Id]", "[empty_ko]", "[digits]", "[swapped]", "[extra]"):
        assert entry in message
    assert "[fine]" not in message


def test_catalog_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("version = \n", "utf-8")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(bad)
    no_version = tmp_path / "nov.toml"
    no_version.write_text('[a]\nko = "가"\nen = "a"\n', "utf-8")
    with pytest.raises(CatalogError, match="version"):
        load_catalog(no_version)


# --------------------------------------------------------------------------- build output


def test_build_writes_valid_audio_for_every_prompt(
    built: tuple[Path, builder.BuildResult], catalog: Catalog
) -> None:
    out, result = built
    assert sorted(result.built) == sorted(catalog.ids)
    assert result.moh_built and not result.failed
    for prompt in catalog:
        for suffix, want_rate in ((".wav", 8000), (".wav16", 16000)):
            path = out / "ko" / "ivr120" / f"{prompt.id}{suffix}"
            assert wav_format_tag(path) == 1, path
            rate, channels, width, samples = read_wav(path)
            assert (rate, channels, width) == (want_rate, 1, 2), path
            assert len(samples) / rate > 0.8, f"{path} is too short"
            assert rms_dbfs(samples) > -35, f"{path} is (nearly) silent"
            peak = max(max(samples), -min(samples))
            assert peak < 0.9 * 32768, f"{path}: peak above -1 dBFS"
            # ~150 ms of leading/trailing silence so playback start clips nothing
            edge = int(0.1 * rate)
            assert rms_dbfs(samples[:edge]) < -60, f"{path}: no leading silence"
            assert rms_dbfs(samples[-edge:]) < -60, f"{path}: no trailing silence"


def test_music_on_hold_is_audible_and_calm(built: tuple[Path, builder.BuildResult]) -> None:
    out, _ = built
    path = out / "moh" / "gentle.wav"
    assert wav_format_tag(path) == 1
    rate, channels, width, samples = read_wav(path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert 25 <= len(samples) / rate <= 40
    assert gated_loudness(samples, rate) == pytest.approx(builder.TARGET_LOUDNESS_DBFS, abs=1)
    assert max(max(samples), -min(samples)) < 32768 * 0.9  # never near clipping
    # a waiting caller hears music all the way through, not just in places
    for second in range(1, 28):
        window = samples[second * rate : (second + 1) * rate]
        assert rms_dbfs(window) > -30, f"music on hold nearly silent at {second} s"
    # no sharp transients: after the initial fade-in, the level never jumps by more than
    # a few dB from one 20 ms window to the next (a click or pluck onset would be 10+ dB)
    step = rate // 50
    levels = [rms_dbfs(samples[i : i + step]) for i in range(rate // 2, len(samples), step)]
    assert max(b - a for a, b in zip(levels, levels[1:], strict=False)) < 6


def test_prompts_and_music_on_hold_have_the_same_loudness(
    built: tuple[Path, builder.BuildResult], catalog: Catalog
) -> None:
    """A caller on hold hears the music and the prompts between it at one level (the music
    was 5-7 dB louder than the voice). Measured on the built files, within 1 dB."""
    out, _ = built
    rate, _, _, samples = read_wav(out / "moh" / "gentle.wav")
    moh = gated_loudness(samples, rate)
    sox = subprocess.run(
        ["sox", str(out / "moh" / "gentle.wav"), "-n", "stats"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rms_line = next(x for x in sox.stderr.splitlines() if x.startswith("RMS lev dB"))
    sox_rms = float(rms_line.split()[3])
    assert sox_rms == pytest.approx(moh, abs=1)  # music has no pauses: plain RMS agrees
    off = {}
    for prompt in catalog:
        for suffix in (".wav", ".wav16"):
            rate, _, _, samples = read_wav(out / "ko" / "ivr120" / f"{prompt.id}{suffix}")
            level = gated_loudness(samples, rate)
            if abs(level - moh) > 1:
                off[f"{prompt.id}{suffix}"] = round(level - moh, 1)
    assert not off, f"prompts more than 1 dB from the music on hold ({moh:.1f} dBFS): {off}"


def test_second_build_is_all_unchanged(
    built: tuple[Path, builder.BuildResult], catalog: Catalog, tmp_path: Path
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav*")}
    result = builder.build(catalog, out, STUDIO)
    assert result.built == [] and result.removed == [] and not result.moh_built
    assert sorted(result.unchanged) == sorted(catalog.ids)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav*")} == before
    assert f"built 0, unchanged {len(catalog)}, removed 0" in result.summary()


def test_cli_build_prints_summary(
    built: tuple[Path, builder.BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    assert builder.main(["build", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0
    assert "built 0, unchanged" in line and "removed 0" in line


def test_changing_one_text_rebuilds_only_that_one(
    built: tuple[Path, builder.BuildResult], catalog: Catalog, tmp_path: Path
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    target = out / "ko" / "ivr120" / "goodbye.wav"
    old_audio = target.read_bytes()
    prompts = dict(catalog.prompts)
    prompts["goodbye"] = dataclasses.replace(prompts["goodbye"], ko="안녕히 계세요.")
    changed = Catalog(version=catalog.version + 1, prompts=prompts)
    result = builder.build(changed, out, STUDIO)
    assert result.built == ["goodbye"]
    assert len(result.unchanged) == len(catalog) - 1 and not result.moh_built
    assert target.read_bytes() != old_audio
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["catalog_version"] == catalog.version + 1


def test_removed_entry_files_are_deleted(
    built: tuple[Path, builder.BuildResult], catalog: Catalog, tmp_path: Path
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    prompts = {k: v for k, v in catalog.prompts.items() if k != "menu_3"}
    result = builder.build(Catalog(version=catalog.version, prompts=prompts), out, STUDIO)
    assert result.removed == ["menu_3"] and result.built == []
    assert not list((out / "ko" / "ivr120").glob("menu_3.*"))
    assert (out / "ko" / "ivr120" / "menu_2.wav").is_file()
    # and it stays removed: the next build has nothing to do
    again = builder.build(Catalog(version=catalog.version, prompts=prompts), out, STUDIO)
    assert again.removed == [] and again.built == []


def test_deleted_output_is_rebuilt(
    built: tuple[Path, builder.BuildResult], catalog: Catalog, tmp_path: Path
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    (out / "ko" / "ivr120" / "menu_0.wav16").unlink()
    (out / "moh" / "gentle.wav").unlink()
    result = builder.build(catalog, out, STUDIO)
    assert result.built == ["menu_0"] and result.moh_built
    assert builder.check(catalog, out) == []


def test_studio_recording_overrides_synthetic_voice(
    built: tuple[Path, builder.BuildResult], catalog: Catalog, tmp_path: Path
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    studio = studio_copy(tmp_path)
    # a 44.1 kHz stereo 24-bit "recording": 1 s of 440 Hz with a second of silence around it
    recording = studio / "welcome.wav"
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", "-b", "24", str(recording),
         "synth", "1", "sine", "440", "gain", "-12", "pad", "1", "1"],
        check=True,
    )  # fmt: skip
    result = builder.build(catalog, out, studio)
    assert result.built == ["welcome"]
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["prompts"]["welcome"]["source"] == "studio"
    for suffix, want_rate in ((".wav", 8000), (".wav16", 16000)):
        rate, channels, width, samples = read_wav(out / "ko" / "ivr120" / f"welcome{suffix}")
        assert (rate, channels, width) == (want_rate, 1, 2)
        # silence trimmed, 150 ms padding added: 1.3 s, not the synthetic voice's length
        assert len(samples) / rate == pytest.approx(1.3, abs=0.05)
        assert gated_loudness(samples, rate) == pytest.approx(builder.TARGET_LOUDNESS_DBFS, abs=1)
    # unchanged recording: nothing to do; changed recording: rebuilt
    assert builder.build(catalog, out, studio).built == []
    subprocess.run(
        ["sox", "-n", "-r", "48000", "-c", "1", str(recording), "synth", "1.5", "sine", "330"],
        check=True,
    )
    assert builder.build(catalog, out, studio).built == ["welcome"]
    # recording removed: back to the synthetic voice
    recording.unlink()
    assert builder.build(catalog, out, studio).built == ["welcome"]
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["prompts"]["welcome"]["source"] == "espeak-ng"


def test_broken_studio_file_fails_that_prompt_only(
    built: tuple[Path, builder.BuildResult], catalog: Catalog, tmp_path: Path
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    studio = studio_copy(tmp_path)
    (studio / "menu_1.wav").write_bytes(b"RIFF but not really")
    before = (out / "ko" / "ivr120" / "menu_1.wav").read_bytes()
    with pytest.raises(builder.BuildError, match="menu_1") as info:
        builder.build(catalog, out, studio)
    assert "FAILED 1" in str(info.value)
    assert (out / "ko" / "ivr120" / "menu_1.wav").read_bytes() == before  # old audio kept
    assert not list(out.rglob("*.tmp"))
    (studio / "menu_1.wav").unlink()
    assert builder.build(catalog, out, studio).built == []


# --------------------------------------------------------------------------- check / errors


def test_check_passes_then_fails_when_a_file_is_missing(
    built: tuple[Path, builder.BuildResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = copy_out(built[0], tmp_path / "sounds")
    assert builder.main(["check", "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "ko" / "ivr120" / "hold_reassurance.wav").unlink()
    (out / "ko" / "ivr120" / "menu_5.wav16").write_bytes(b"not a wav")
    assert builder.main(["check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "hold_reassurance" in err and "menu_5" in err
    assert "welcome" not in err


def test_check_on_empty_dir_lists_everything(catalog: Catalog, tmp_path: Path) -> None:
    problems = builder.check(catalog, tmp_path)
    assert len(problems) == len(catalog) + 1  # every prompt plus the music on hold


def test_missing_tool_is_reported_with_apt_package(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    real_which = shutil.which

    def which(name: str) -> str | None:
        return None if name == "espeak-ng" else real_which(name)

    monkeypatch.setattr(builder.shutil, "which", which)
    with pytest.raises(builder.ToolMissingError, match="apt-get install espeak-ng"):
        builder.build(catalog, tmp_path / "out", None)
    assert builder.main(["build", "--out", str(tmp_path / "out2")]) == 1
    assert "apt-get install espeak-ng" in capsys.readouterr().err


def test_cli_reports_bad_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "catalog.toml"
    bad.write_text('version = 1\n[x]\nko = ""\nen = "x"\n', "utf-8")
    assert builder.main(["check", "--out", str(tmp_path), "--catalog", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "[x]" in err
