"""``ivr-prompts``: turn the prompt catalog into sound files Asterisk can play.

Layout written under ``--out DIR`` (point Asterisk's ``astdatadir``/sounds at it)::

    DIR/ko/ivr120/<id>.wav     8 kHz mono 16-bit PCM  (Asterisk format "wav")
    DIR/ko/ivr120/<id>.wav16   16 kHz mono 16-bit PCM (Asterisk format "wav16")
    DIR/moh/gentle.wav         ~30 s of calm music on hold, 8 kHz mono 16-bit
    DIR/manifest.json          input hash per output, so unchanged entries are skipped

The voice is ``espeak-ng -v ko``; a studio recording ``<studio>/<id>.wav`` replaces it.
Every source goes through the same sox chain: mono, trim digital silence, short fades,
resample, 150 ms of silence at both ends, then a gain to the common loudness.

Prompts and music on hold are levelled to one loudness (`ivr.prompts.wav`), so that a caller
on hold hears the music and the reassurance between it at one level.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ivr.prompts.catalog import (
    DEFAULT_CATALOG_PATH,
    ID_PATTERN,
    Catalog,
    CatalogError,
    Prompt,
    load_catalog,
)
from ivr.prompts.wav import (
    MAX_PEAK_DBFS,
    TARGET_LOUDNESS_DBFS,
    WavInfo,
    analyze_wav,
    level_gain,
    loudness_dbfs,
    wav_problem,
)

__all__ = [
    "BUILDER_VERSION",
    "BuildError",
    "BuildResult",
    "ToolMissingError",
    "WavInfo",
    "TARGET_LOUDNESS_DBFS",
    "analyze_wav",
    "loudness_dbfs",
    "build",
    "check",
    "main",
    "prompt_paths",
]

#: Bump when the processing chain changes in a way that should rebuild everything.
BUILDER_VERSION = 2


PROMPT_SUBDIR = Path("ko") / "ivr120"
MOH_FILE = Path("moh") / "gentle.wav"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class OutputFormat:
    suffix: str
    rate: int


#: What Asterisk's format_wav (``.wav``, 8 kHz) and wav16 (``.wav16``, 16 kHz) read.
OUTPUTS: tuple[OutputFormat, ...] = (OutputFormat(".wav", 8000), OutputFormat(".wav16", 16000))


@dataclass(frozen=True)
class VoiceSettings:
    """espeak-ng parameters; part of every prompt's hash."""

    voice: str = "ko"
    speed: int = 150  # words per minute; espeak's default is 175
    pitch: int = 45  # 0-99, default 50: a touch lower sounds calmer
    word_gap: int = 1  # extra pause between words, in units of 10 ms

    def espeak_args(self) -> list[str]:
        return [
            "-v",
            self.voice,
            "-s",
            str(self.speed),
            "-p",
            str(self.pitch),
            "-g",
            str(self.word_gap),
        ]


@dataclass(frozen=True)
class PostProcess:
    """The sox chain applied to every prompt source; part of every prompt's hash."""

    highpass_hz: int = 60
    trim_threshold: str = "0.1%"  # only near-digital silence is trimmed
    fade_in_s: float = 0.02
    fade_out_s: float = 0.06
    peak_dbfs: float = -3.0
    pad_s: float = 0.15

    def effects(self, rate: int) -> list[str]:
        t = self.trim_threshold
        return [
            "remix", "-",
            "highpass", str(self.highpass_hz),
            "silence", "1", "0.01", t,  # trim leading silence
            "reverse",
            "silence", "1", "0.01", t,  # trim trailing silence (reversed)
            "fade", "h", str(self.fade_out_s),  # fade out (reversed)
            "reverse",
            "fade", "h", str(self.fade_in_s),
            "rate", "-v", str(rate),
            "gain", "-n", str(self.peak_dbfs),  # a known peak before levelling
            "pad", str(self.pad_s), str(self.pad_s),
        ]  # fmt: skip


VOICE = VoiceSettings()
POST = PostProcess()

#: Music on hold, made with sox ``synth`` only: four soft sine chords (F maj7, A m7, D m7,
#: C) crossfading every 7.5 s under a slow, quiet sine melody, with a little reverb.
#: Notes stay in 150-900 Hz so that they survive a telephone line.
MOH_RECIPE: dict[str, Any] = {
    "rate": 8000,
    "length_s": 30.0,
    "chords": [  # start, duration, fade in, fade out, notes
        # Neighbouring chords share notes or keep clear of each other (no slow beating).
        [0.0, 9.0, 0.5, 3.0, ["F3", "A3", "C4", "E4"]],
        [7.5, 9.0, 2.0, 3.0, ["A3", "C4", "E4", "G4"]],
        [15.0, 9.0, 2.0, 3.0, ["D3", "F3", "A3", "C4"]],
        [22.5, 8.5, 2.0, 3.5, ["C4", "E4", "G4"]],
    ],
    "chord_tremolo": [0.2, 20],  # Hz, depth %
    "chord_volume": 0.5,
    "melody": [  # start, duration, note
        [1.0, 2.5, "C5"],
        [3.0, 2.5, "E5"],
        [5.0, 3.0, "A4"],
        [8.0, 2.5, "E5"],
        [10.0, 2.5, "G5"],
        [12.0, 3.0, "C5"],
        [15.5, 2.5, "A4"],
        [17.5, 2.5, "D5"],
        [19.5, 3.0, "F5"],
        [23.0, 3.0, "E5"],
        [25.5, 2.0, "D5"],
        [27.0, 2.5, "C5"],
    ],
    "melody_attack_s": 0.35,
    "melody_volume": 0.3,
    "reverb": [40, 60, 70],  # reverberance %, HF damping %, room scale %
    "fade_in_s": 0.4,
    "fade_out_s": 2.5,
    "target_loudness_dbfs": TARGET_LOUDNESS_DBFS,
    "max_peak_dbfs": MAX_PEAK_DBFS,
}

# Apt packages that provide the tools, for error messages.
_TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}


class BuildError(RuntimeError):
    """A prompt or the music on hold could not be built."""


class ToolMissingError(BuildError):
    """espeak-ng or sox is not installed."""


# --------------------------------------------------------------------------- tools


def _require_tools(names: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        path = shutil.which(name)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        pkgs = " ".join(_TOOLS.get(m, m) for m in missing)
        raise ToolMissingError(
            f"{', '.join(missing)} not found on PATH; install with: sudo apt-get install {pkgs}"
        )
    return found


def _run(cmd: Sequence[str], what: str, stdin: bytes | None = None) -> None:
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
        raise BuildError(f"{what}: {Path(cmd[0]).name} failed: {err}")


def _sox_out(path: Path, rate: int) -> list[str]:
    """sox output-file arguments for 16-bit signed PCM mono WAV at ``rate``."""
    return ["-t", "wav", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(rate), str(path)]


def _tmp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


# --------------------------------------------------------------------------- manifest


def prompt_paths(out: Path, prompt_id: str) -> list[Path]:
    """The files written for one prompt id."""
    base = out / PROMPT_SUBDIR
    return [base / f"{prompt_id}{fmt.suffix}" for fmt in OUTPUTS]


def _digest(payload: Mapping[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _prompt_digest(prompt: Prompt, studio_file: Path | None) -> str:
    studio_hash = hashlib.sha256(studio_file.read_bytes()).hexdigest() if studio_file else None
    return _digest({
        "builder": BUILDER_VERSION,
        "text": prompt.ko,
        "voice": asdict(VOICE),
        "post": asdict(POST),
        "outputs": [asdict(o) for o in OUTPUTS],
        "studio": studio_hash,
    })  # fmt: skip


def _moh_digest() -> str:
    return _digest({"builder": BUILDER_VERSION, "recipe": MOH_RECIPE})


def _load_manifest(out: Path) -> dict[str, Any]:
    empty: dict[str, Any] = {"prompts": {}, "moh": {}}
    path = out / MANIFEST_NAME
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return empty
    except (OSError, ValueError) as exc:
        print(
            f"ivr-prompts: warning: ignoring unreadable {path} ({exc}); rebuilding all",
            file=sys.stderr,
        )
        return empty
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return empty
    prompts = data.get("prompts")
    moh = data.get("moh")
    return {
        "prompts": prompts if isinstance(prompts, dict) else {},
        "moh": moh if isinstance(moh, dict) else {},
    }


def _write_manifest(
    out: Path, catalog: Catalog, prompts: Mapping[str, Any], moh: Mapping[str, Any]
) -> None:
    data = {
        "format": MANIFEST_FORMAT,
        "builder_version": BUILDER_VERSION,
        "catalog_version": catalog.version,
        "prompts": dict(sorted(prompts.items())),
        "moh": dict(moh),
    }
    path = out / MANIFEST_NAME
    tmp = _tmp_name(path)
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")
    os.replace(tmp, path)


def _entry_hash(entry: Any) -> str | None:
    if isinstance(entry, dict) and isinstance(entry.get("hash"), str):
        return entry["hash"]
    return None


def _outputs_ok(paths: Iterable[Path]) -> bool:
    return all(p.is_file() and p.stat().st_size > 44 for p in paths)


# --------------------------------------------------------------------------- building


@dataclass(frozen=True)
class _PromptJob:
    prompt: Prompt
    studio_file: Path | None
    digest: str


@dataclass
class BuildResult:
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    moh_built: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        line = (
            f"built {len(self.built)}, unchanged {len(self.unchanged)}, removed {len(self.removed)}"
        )
        if self.failed:
            line += f", FAILED {len(self.failed)}"
        moh = "built" if self.moh_built else "unchanged"
        return f"{line}; music on hold {moh} ({self.seconds:.2f} s)"


def _build_prompt(job: _PromptJob, out: Path, tools: Mapping[str, str], tmpdir: Path) -> None:
    pid = job.prompt.id
    if job.studio_file is not None:
        source = job.studio_file
    else:
        source = tmpdir / f"{pid}.espeak.wav"
        _run(
            [tools["espeak-ng"], *VOICE.espeak_args(), "-b", "1", "-w", str(source), "--stdin"],
            f"prompt {pid!r} (espeak-ng -v {VOICE.voice}; the Korean voice is in espeak-ng-data)",
            stdin=job.prompt.ko.encode("utf-8") + b"\n",
        )
    for fmt, final in zip(OUTPUTS, prompt_paths(out, pid), strict=True):
        tmp = _tmp_name(final)
        shaped = tmpdir / f"{pid}{fmt.suffix}.shaped.wav"
        try:
            _run(
                [
                    tools["sox"],
                    "-R",
                    "-V1",
                    str(source),
                    *_sox_out(shaped, fmt.rate),
                    *POST.effects(fmt.rate),
                ],
                f"prompt {pid!r} ({source})",
            )
            info = analyze_wav(shaped)
            if info.rms_dbfs < -45:
                raise BuildError(f"prompt {pid!r}: {source} is silent after processing")
            _run(
                [tools["sox"], "-R", "-V1", str(shaped), *_sox_out(tmp, fmt.rate),
                 "gain", f"{level_gain(info):.2f}"],
                f"prompt {pid!r} (level)",
            )  # fmt: skip
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
            shaped.unlink(missing_ok=True)


def _build_moh(out: Path, tools: Mapping[str, str], tmpdir: Path) -> None:
    r = MOH_RECIPE
    sox = [tools["sox"], "-R", "-V1"]
    rate = int(r["rate"])
    parts: list[tuple[float, Path]] = []

    for i, (start, dur, fade_in, fade_out, notes) in enumerate(r["chords"]):
        path = tmpdir / f"moh_chord{i}.wav"
        tones = [arg for note in notes for arg in ("sine", note)]
        _run(
            [*sox, "-r", str(rate), "-c", str(len(notes)), "-n", *_sox_out(path, rate),
             "synth", str(dur), *tones, "remix", "-",
             "tremolo", *(str(x) for x in r["chord_tremolo"]),
             "fade", "q", str(fade_in), str(dur), str(fade_out), "pad", str(start)],
            "music on hold (chord)",
        )  # fmt: skip
        parts.append((float(r["chord_volume"]), path))

    attack = float(r["melody_attack_s"])
    for i, (start, dur, note) in enumerate(r["melody"]):
        path = tmpdir / f"moh_note{i}.wav"
        _run(
            [*sox, "-r", str(rate), "-n", *_sox_out(path, rate),
             "synth", str(dur), "sine", note,
             "fade", "q", str(attack), str(dur), str(dur - attack), "pad", str(start)],
            "music on hold (melody)",
        )  # fmt: skip
        parts.append((float(r["melody_volume"]), path))

    mix = tmpdir / "moh_mix.wav"
    length = float(r["length_s"])
    inputs = [arg for vol, path in parts for arg in ("-v", str(vol), str(path))]
    _run(
        [*sox, "-m", *inputs, *_sox_out(mix, rate),
         "reverb", *(str(x) for x in r["reverb"]),
         "trim", "0", str(length),
         "fade", "q", str(r["fade_in_s"]), str(length), str(r["fade_out_s"]),
         "gain", "-n", "-6"],
        "music on hold (mix)",
    )  # fmt: skip

    gain = level_gain(analyze_wav(mix), float(r["target_loudness_dbfs"]))
    final = out / MOH_FILE
    tmp = _tmp_name(final)
    try:
        _run([*sox, str(mix), *_sox_out(tmp, rate), "gain", f"{gain:.2f}"], "music on hold (level)")
        if analyze_wav(tmp).rms_dbfs < -30:
            raise BuildError("music on hold came out (nearly) silent")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def build(
    catalog: Catalog,
    out: Path,
    studio: Path | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
) -> BuildResult:
    """Build every prompt whose inputs changed, plus the music on hold.

    Raises :class:`BuildError` (after writing whatever succeeded) if anything failed.
    """
    started = time.monotonic()
    out = Path(out)
    result = BuildResult()
    (out / PROMPT_SUBDIR).mkdir(parents=True, exist_ok=True)
    (out / MOH_FILE).parent.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(out)
    old_prompts: dict[str, Any] = manifest["prompts"]

    todo: list[_PromptJob] = []
    new_prompts: dict[str, Any] = {}
    for prompt in catalog:
        studio_file = studio / f"{prompt.id}.wav" if studio is not None else None
        if studio_file is not None and not studio_file.is_file():
            studio_file = None
        digest = _prompt_digest(prompt, studio_file)
        old = old_prompts.get(prompt.id)
        if not force and _entry_hash(old) == digest and _outputs_ok(prompt_paths(out, prompt.id)):
            result.unchanged.append(prompt.id)
            new_prompts[prompt.id] = old
        else:
            todo.append(_PromptJob(prompt, studio_file, digest))

    moh_digest = _moh_digest()
    old_moh = manifest["moh"].get("gentle")
    moh_todo = force or _entry_hash(old_moh) != moh_digest or not _outputs_ok([out / MOH_FILE])
    new_moh: dict[str, Any] = {"gentle": old_moh} if old_moh is not None else {}

    if todo or moh_todo:
        needed = ["sox"]
        if any(job.studio_file is None for job in todo):
            needed.insert(0, "espeak-ng")
        tools = _require_tools(needed)
        with tempfile.TemporaryDirectory(prefix="ivr-prompts-") as tmp:
            tmpdir = Path(tmp)
            tasks: list[tuple[str, Callable[[], None]]] = []
            if moh_todo:  # longest task first
                tasks.append(("moh/gentle", partial(_build_moh, out, tools, tmpdir)))
            for job in todo:
                tasks.append((job.prompt.id, partial(_build_prompt, job, out, tools, tmpdir)))
            workers = max(1, min(len(tasks), jobs or os.cpu_count() or 2))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [(name, pool.submit(fn)) for name, fn in tasks]
                for name, fut in futures:
                    exc = fut.exception()
                    if exc is not None:
                        result.failed[name] = str(exc)
        for job in todo:
            pid = job.prompt.id
            if pid in result.failed:
                if pid in old_prompts:  # keep tracking its files; the stale hash forces a retry
                    new_prompts[pid] = old_prompts[pid]
                continue
            result.built.append(pid)
            new_prompts[pid] = {
                "hash": job.digest,
                "source": "studio" if job.studio_file else "espeak-ng",
                "files": [p.relative_to(out).as_posix() for p in prompt_paths(out, pid)],
            }
        if moh_todo and "moh/gentle" not in result.failed:
            result.moh_built = True
            new_moh["gentle"] = {"hash": moh_digest, "files": [MOH_FILE.as_posix()]}

    for pid in sorted(set(old_prompts) - set(catalog.prompts)):
        if not ID_PATTERN.match(pid):  # never derive paths from a mangled manifest
            continue
        for path in prompt_paths(out, pid):
            path.unlink(missing_ok=True)
        result.removed.append(pid)

    _write_manifest(out, catalog, new_prompts, new_moh)
    result.built.sort()
    result.seconds = time.monotonic() - started
    if result.failed:
        details = "\n".join(f"  {name}: {msg}" for name, msg in sorted(result.failed.items()))
        raise BuildError(f"build incomplete ({result.summary()}); failed:\n{details}")
    return result


# --------------------------------------------------------------------------- checking


def check(catalog: Catalog, out: Path) -> list[str]:
    """Problems with the built sound files, one line each; empty when all is well."""
    out = Path(out)
    problems: list[str] = []
    for prompt in catalog:
        bad = []
        for fmt, path in zip(OUTPUTS, prompt_paths(out, prompt.id), strict=True):
            why = wav_problem(path, fmt.rate)
            if why:
                bad.append(f"{path.relative_to(out).as_posix()} {why}")
        if bad:
            problems.append(f"{prompt.id}: " + "; ".join(bad))
    why = wav_problem(out / MOH_FILE, int(MOH_RECIPE["rate"]))
    if why:
        problems.append(f"music on hold: {MOH_FILE.as_posix()} {why}")
    return problems


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivr-prompts", description="Build the IVR's Korean prompts and music on hold."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="synthesise/convert prompts whose inputs changed")
    c = sub.add_parser("check", help="exit 1 if any catalog entry has no audio")
    for p in (b, c):
        p.add_argument("--out", type=Path, required=True, help="sounds directory to write")
        p.add_argument(
            "--catalog",
            type=Path,
            default=DEFAULT_CATALOG_PATH,
            help="catalog file (default: prompts/catalog.toml)",
        )
    b.add_argument(
        "--studio",
        type=Path,
        default=None,
        help="studio recordings <id>.wav (default: 'studio' next to the catalog)",
    )
    b.add_argument("--jobs", type=int, default=None, help="parallel workers (default: CPUs)")
    b.add_argument("--force", action="store_true", help="rebuild everything")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        catalog = load_catalog(args.catalog)
        if args.command == "build":
            studio = args.studio if args.studio is not None else args.catalog.parent / "studio"
            result = build(catalog, args.out, studio, jobs=args.jobs, force=args.force)
            print(f"ivr-prompts: {result.summary()}")
            return 0
        problems = check(catalog, args.out)
    except (CatalogError, BuildError) as exc:
        print(f"ivr-prompts: error: {exc}", file=sys.stderr)
        return 1
    if problems:
        print(
            f"ivr-prompts: {len(problems)} catalog entr{'y' if len(problems) == 1 else 'ies'} "
            f"without audio in {args.out} (run `ivr-prompts build --out {args.out}`):",
            file=sys.stderr,
        )
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(
        f"ivr-prompts: all {len(catalog)} prompts and the music on hold are present in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
