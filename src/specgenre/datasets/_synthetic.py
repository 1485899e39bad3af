"""Synthetic music-like clips of the GTZAN genres (:func:`make_genre_clips`).

Every clip is a little arrangement (drums, bass, chords and sometimes a
melody) rendered with cheap wavetable synthesis: each note is a short array
(a harmonic series with a genre-dependent spectral tilt under an envelope)
added into the clip buffer; drum hits are decaying noise bursts and pitch
sweeps rendered once per clip and added at their onsets. There is no
per-sample Python loop, so 100 clips of 30 s take a few seconds.

Genres differ in tempo, groove (straight, swung, shuffled, off-beat),
percussion, timbre (brightness, attack, distortion), harmony (chord
qualities and progressions) and recording colour, and every clip draws its
own tempo, key, progression, instrument timbres, mix levels, band limits and
noise from overlapping ranges, so that the classes are learnable but far
from trivially separable.
"""

import numbers

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils.validation import check_random_state

from ._gtzan import GENRES

__all__ = ["make_genre_clips"]

_TABLE_N = 2048  # wavetable size (power of two: phase wraps with a bit mask)
_MASK = _TABLE_N - 1
_FADE_S = 0.004  # release ramp at the end of every note (no clicks)
_MAX_HARMONICS = 40
_PHASE = np.arange(_TABLE_N) / _TABLE_N
# sin and cos of every harmonic over one period: wavetables are matrix products
_HSIN = np.sin(2.0 * np.pi * np.arange(1, _MAX_HARMONICS + 1)[:, None] * _PHASE)
_HCOS = np.cos(2.0 * np.pi * np.arange(1, _MAX_HARMONICS + 1)[:, None] * _PHASE)
_SINE = _HSIN[0].astype(np.float32)  # a pure sine wavetable

# chord qualities: semitones above the root
_CHORDS = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "5": (0, 7, 12),
}

_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "pent": (0, 2, 4, 7, 9),
    "mpent": (0, 3, 5, 7, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixo": (0, 2, 4, 5, 7, 9, 10),
}


def _bars(*chords):
    """A progression of one chord per bar: ("0:maj", "7:7", ...) -> [(0, 'maj'), ...]."""
    out = []
    for c in chords:
        degree, quality = c.split(":")
        out.append((int(degree), quality))
    return out


def _steps(*items):
    """Rhythm helper: ``(step, duration_in_16ths, velocity)`` triples."""
    return tuple(items)


_EIGHTHS = tuple(range(0, 16, 2))
_QUARTERS = (0, 4, 8, 12)
_OFFBEATS = (2, 6, 10, 14)

# Each genre: tempo range (BPM), swing amount (0 straight .. 1 triplet
# shuffle), timing jitter (s), progressions (chord per bar; "span" 16ths per
# chord), drum patterns (dicts step -> velocity; None: no drums), kit
# parameters, instrument parts, bass style, melody, and the "recording":
# low-pass cut-off (Hz), noise level (dB below the mix), reverb amount.
# Ranges overlap between genres on purpose.
_STYLES = {
    "blues": dict(
        bpm=(68, 128),
        swing=(0.55, 1.0),
        human=0.012,
        span=16,
        progressions=[
            _bars("0:7", "0:7", "0:7", "0:7", "5:7", "5:7", "0:7", "0:7", "7:7", "5:7", "0:7", "7:7"),
            _bars("0:7", "5:7", "0:7", "0:7", "5:7", "5:7", "0:7", "0:7", "7:7", "5:7", "0:7", "0:7"),
        ],
        drums=[
            dict(kick={0: 1, 8: 0.8}, snare={4: 1, 12: 1},
                 hat={s: (0.6 if s % 4 == 0 else 0.45) for s in _EIGHTHS}),
            dict(kick={0: 1, 6: 0.5, 8: 0.8}, snare={4: 1, 12: 1},
                 ride={s: (0.6 if s % 4 == 0 else 0.4) for s in _EIGHTHS}),
        ],
        kick=dict(f=(48, 68), decay=(0.08, 0.2)),
        snare=dict(decay=(0.08, 0.2), tone=(0.2, 0.5)),
        drum_level=(-10, -3),
        parts=[
            dict(env="pluck", tilt=(1.0, 1.7), decay=(0.25, 0.6), drive=(0.0, 3.0),
                 twang=0.3, center=57, level=(-6, 0), prob=1.0,
                 rhythm=_steps(*[(s, 2, 0.9 if s % 4 == 0 else 0.6) for s in _EIGHTHS])),
            dict(env="organ", tilt=(1.3, 2.0), odd=0.5, attack=(0.01, 0.04), center=62,
                 level=(-12, -5), prob=0.4, rhythm=_steps((0, 16, 0.7))),
        ],
        bass=dict(style="boogie", tilt=(1.6, 2.4), level=(-6, 0)),
        lead=dict(prob=0.7, env="pluck", tilt=(0.9, 1.5), decay=(0.3, 0.8), drive=(0.0, 4.0),
                  twang=0.2, scale="blues", density=0.35, center=69, level=(-6, 0),
                  vibrato=(0.0, 0.25)),
        lowpass=(2500, 9000),
        noise_db=(-42, -22),
        reverb=(0.0, 0.3),
    ),
    "classical": dict(
        bpm=(55, 130),
        swing=(0.0, 0.0),
        human=0.03,
        span=16,
        progressions=[
            _bars("0:maj", "5:maj", "7:maj", "0:maj"),
            _bars("0:min", "5:min", "7:maj", "0:min"),
            _bars("0:maj", "9:min", "2:min", "7:7"),
            _bars("0:min", "8:maj", "5:min", "7:maj"),
        ],
        drums=None,
        parts=[
            dict(env="pad", tilt=(0.9, 1.6), attack=(0.12, 0.5), release=(0.2, 0.5),
                 vibrato=(0.05, 0.2), center=60, level=(-6, 0), prob=0.85,
                 rhythm=_steps((0, 8, 0.8), (8, 8, 0.7))),
            dict(env="pluck", tilt=(1.4, 2.2), decay=(0.4, 1.2), center=64, level=(-8, -2),
                 prob=0.5, arpeggio=True,
                 rhythm=_steps(*[(s, 2, 0.7) for s in _EIGHTHS])),
        ],
        bass=dict(style="bowed", tilt=(1.2, 1.8), level=(-8, -2)),
        lead=dict(prob=0.8, env="pad", tilt=(0.9, 1.5), attack=(0.06, 0.25), release=(0.1, 0.3),
                  scale="major", density=0.3, center=74, level=(-6, 0), vibrato=(0.1, 0.3)),
        lowpass=(3000, 10000),
        noise_db=(-50, -28),
        reverb=(0.25, 0.6),
    ),
    "country": dict(
        bpm=(85, 150),
        swing=(0.0, 0.3),
        human=0.01,
        span=16,
        progressions=[
            _bars("0:maj", "0:maj", "5:maj", "7:maj"),
            _bars("0:maj", "5:maj", "0:maj", "7:maj"),
            _bars("0:maj", "7:maj", "9:min", "5:maj"),
        ],
        drums=[
            dict(kick={0: 1, 8: 0.9}, snare={4: 1, 12: 1}, hat={s: 0.5 for s in _EIGHTHS}),
            dict(kick={0: 1, 8: 0.9},
                 snare={s: (1.0 if s in (4, 12) else 0.3) for s in range(16)}),
        ],
        kick=dict(f=(50, 70), decay=(0.07, 0.16)),
        snare=dict(decay=(0.06, 0.15), tone=(0.2, 0.5)),
        drum_level=(-12, -4),
        parts=[
            dict(env="pluck", tilt=(0.5, 1.1), decay=(0.15, 0.45), twang=0.8, center=60,
                 level=(-4, 0), prob=1.0,
                 rhythm=_steps((0, 3, 0.6), (4, 3, 1.0), (8, 3, 0.6), (12, 3, 1.0))),
            dict(env="pad", tilt=(0.8, 1.3), attack=(0.03, 0.1), release=(0.1, 0.2),
                 vibrato=(0.1, 0.3), center=67, level=(-12, -5), prob=0.4,
                 rhythm=_steps((0, 16, 0.6))),
        ],
        bass=dict(style="rootfifth", tilt=(1.5, 2.2), level=(-6, 0)),
        lead=dict(prob=0.6, env="pluck", tilt=(0.5, 1.0), decay=(0.2, 0.5), twang=0.8,
                  scale="pent", density=0.45, center=72, level=(-6, 0), vibrato=(0.0, 0.1)),
        lowpass=(3500, 10000),
        noise_db=(-45, -25),
        reverb=(0.0, 0.3),
    ),
    "disco": dict(
        bpm=(108, 132),
        swing=(0.0, 0.1),
        human=0.004,
        span=16,
        progressions=[
            _bars("0:m7", "5:m7"),
            _bars("0:m7", "3:maj7", "5:m7", "7:m7"),
            _bars("9:min", "2:min", "7:maj", "0:maj"),
        ],
        drums=[
            dict(kick={s: 1 for s in _QUARTERS}, snare={4: 1, 12: 1},
                 openhat={s: 0.8 for s in _OFFBEATS}, hat={s: 0.3 for s in range(0, 16, 2)}),
            dict(kick={s: 1 for s in _QUARTERS}, snare={4: 0.9, 12: 0.9},
                 openhat={s: 0.7 for s in _OFFBEATS}, hat={s: 0.35 for s in range(1, 16, 2)}),
        ],
        kick=dict(f=(48, 62), decay=(0.1, 0.22)),
        snare=dict(decay=(0.08, 0.18), tone=(0.1, 0.4)),
        drum_level=(-6, 0),
        parts=[
            dict(env="pad", tilt=(0.8, 1.3), attack=(0.05, 0.15), release=(0.1, 0.3),
                 vibrato=(0.05, 0.2), center=67, level=(-10, -2), prob=0.8,
                 rhythm=_steps((0, 16, 0.7))),
            dict(env="pluck", tilt=(0.7, 1.2), decay=(0.04, 0.1), center=64, level=(-6, 0),
                 prob=0.8, rhythm=_steps(*[(s, 1, 0.8) for s in _OFFBEATS + (3, 11)])),
        ],
        bass=dict(style="octave", tilt=(1.0, 1.8), level=(-4, 0)),
        lead=dict(prob=0.4, env="pad", tilt=(0.7, 1.2), attack=(0.02, 0.06), release=(0.05, 0.2),
                  scale="dorian", density=0.4, center=72, level=(-8, -2), vibrato=(0.05, 0.2)),
        lowpass=(4000, 11000),
        noise_db=(-45, -25),
        reverb=(0.05, 0.3),
    ),
    "hiphop": dict(
        bpm=(72, 102),
        swing=(0.0, 0.5),
        human=0.004,
        span=32,
        progressions=[
            _bars("0:m7", "8:maj7"),
            _bars("0:min", "3:maj", "10:maj", "5:min"),
            _bars("0:m7", "5:m7"),
        ],
        drums=[
            dict(kick={0: 1, 7: 0.7, 10: 0.9}, snare={4: 1, 12: 1}, hat={s: 0.45 for s in _EIGHTHS}),
            dict(kick={0: 1, 3: 0.6, 10: 0.9}, snare={4: 1, 12: 1},
                 hat={s: (0.5 if s % 2 == 0 else 0.25) for s in range(16)}),
        ],
        kick=dict(f=(38, 55), decay=(0.25, 0.6)),
        snare=dict(decay=(0.1, 0.25), tone=(0.0, 0.3)),
        drum_level=(-2, 2),
        parts=[
            dict(env="pad", tilt=(1.6, 2.6), attack=(0.02, 0.15), release=(0.1, 0.4), center=62,
                 level=(-12, -4), prob=0.8, rhythm=_steps((0, 16, 0.7))),
            dict(env="pluck", tilt=(1.2, 2.0), decay=(0.2, 0.6), center=67, level=(-12, -4),
                 prob=0.5, rhythm=_steps((0, 3, 0.8), (6, 2, 0.6), (10, 4, 0.7))),
        ],
        bass=dict(style="sub", tilt=(3.0, 5.0), level=(-6, 0)),
        lead=dict(prob=0.3, env="pluck", tilt=(1.5, 2.5), decay=(0.3, 1.0), scale="mpent",
                  density=0.2, center=76, level=(-14, -6), vibrato=(0.0, 0.0)),
        lowpass=(2500, 8000),
        noise_db=(-45, -25),
        reverb=(0.0, 0.2),
    ),
    "jazz": dict(
        bpm=(90, 210),
        swing=(0.5, 1.0),
        human=0.015,
        span=8,
        progressions=[
            _bars("2:m7", "2:m7", "7:7", "7:7", "0:maj7", "0:maj7", "9:7", "9:7"),
            _bars("2:m7", "7:7", "0:maj7", "9:m7"),
            _bars("0:maj7", "9:m7", "2:m7", "7:7"),
        ],
        drums=[
            dict(ride={0: 0.7, 4: 0.8, 6: 0.5, 8: 0.7, 12: 0.8, 14: 0.5}, hat={4: 0.4, 12: 0.4},
                 kick={s: 0.2 for s in _QUARTERS}, snare={6: 0.25, 11: 0.2}),
            dict(ride={0: 0.7, 4: 0.8, 6: 0.5, 8: 0.7, 12: 0.8, 14: 0.5}, hat={4: 0.4, 12: 0.4},
                 brush={s: 0.35 for s in range(16)}),
        ],
        kick=dict(f=(50, 70), decay=(0.08, 0.16)),
        snare=dict(decay=(0.06, 0.14), tone=(0.1, 0.4)),
        drum_level=(-16, -6),
        parts=[
            dict(env="pluck", tilt=(1.5, 2.4), decay=(0.3, 0.9), center=60, level=(-6, 0),
                 prob=0.9, rhythm=_steps((0, 3, 0.8), (6, 4, 0.7), (10, 2, 0.5))),
        ],
        bass=dict(style="walk", tilt=(1.8, 2.8), level=(-4, 0)),
        lead=dict(prob=0.75, env="pad", tilt=(1.0, 1.8), attack=(0.02, 0.07), release=(0.05, 0.15),
                  odd=0.3, scale="dorian", density=0.55, center=70, level=(-6, 0),
                  vibrato=(0.05, 0.25)),
        lowpass=(2500, 8000),
        noise_db=(-42, -22),
        reverb=(0.1, 0.4),
    ),
    "metal": dict(
        bpm=(120, 205),
        swing=(0.0, 0.0),
        human=0.003,
        span=16,
        progressions=[
            _bars("0:5", "0:5", "8:5", "10:5"),
            _bars("0:5", "3:5", "5:5", "6:5"),
            _bars("0:5", "1:5", "0:5", "10:5"),
        ],
        drums=[
            dict(kick={s: 0.8 for s in range(16)}, snare={4: 1, 12: 1},
                 crash={0: 0.8}, ride={s: 0.5 for s in _QUARTERS}),
            dict(kick={s: 0.9 for s in _EIGHTHS}, snare={4: 1, 12: 1},
                 hat={s: 0.6 for s in _EIGHTHS}, crash={0: 0.7}),
            dict(kick={0: 1, 3: 0.8, 6: 0.9, 10: 0.8}, snare={8: 1},
                 crash={0: 0.6}, hat={s: 0.5 for s in _QUARTERS}),
        ],
        kick=dict(f=(55, 80), decay=(0.04, 0.1)),
        snare=dict(decay=(0.08, 0.18), tone=(0.2, 0.5)),
        drum_level=(-8, -2),
        parts=[
            dict(env="pluck", tilt=(0.8, 1.4), decay=(0.15, 0.5), drive=(8.0, 40.0), center=47,
                 level=(-3, 0), prob=1.0,
                 rhythm=_steps(*[(s, 1, 1.0 if s % 4 == 0 else 0.7) for s in range(16)])),
        ],
        bass=dict(style="root16", tilt=(1.0, 1.8), level=(-8, -2)),
        lead=dict(prob=0.35, env="pad", tilt=(0.8, 1.3), attack=(0.005, 0.02), release=(0.05, 0.1),
                  drive=(5.0, 20.0), scale="minor", density=0.6, center=69, level=(-8, -2),
                  vibrato=(0.1, 0.35)),
        lowpass=(3500, 11000),
        noise_db=(-40, -20),
        reverb=(0.0, 0.2),
    ),
    "pop": dict(
        bpm=(92, 132),
        swing=(0.0, 0.15),
        human=0.004,
        span=16,
        progressions=[
            _bars("0:maj", "7:maj", "9:min", "5:maj"),
            _bars("9:min", "5:maj", "0:maj", "7:maj"),
            _bars("0:maj", "5:maj", "9:min", "7:maj"),
        ],
        drums=[
            dict(kick={0: 1, 8: 0.9}, snare={4: 1, 12: 1}, hat={s: 0.5 for s in _EIGHTHS}),
            dict(kick={0: 1, 6: 0.6, 8: 0.9}, snare={4: 1, 12: 1},
                 hat={s: (0.5 if s % 2 == 0 else 0.3) for s in range(16)}),
        ],
        kick=dict(f=(45, 65), decay=(0.1, 0.25)),
        snare=dict(decay=(0.08, 0.2), tone=(0.1, 0.4)),
        drum_level=(-8, -1),
        parts=[
            dict(env="pad", tilt=(0.7, 1.3), attack=(0.02, 0.1), release=(0.1, 0.3), center=64,
                 level=(-10, -3), prob=0.8, rhythm=_steps((0, 16, 0.7))),
            dict(env="pluck", tilt=(0.8, 1.4), decay=(0.15, 0.5), center=67, level=(-6, 0),
                 prob=0.85,
                 rhythm=_steps((0, 2, 1.0), (3, 2, 0.7), (6, 2, 0.8), (8, 2, 1.0), (11, 2, 0.7),
                               (14, 2, 0.8))),
        ],
        bass=dict(style="root8", tilt=(1.4, 2.2), level=(-6, 0)),
        lead=dict(prob=0.8, env="pad", tilt=(0.6, 1.2), attack=(0.01, 0.05), release=(0.05, 0.15),
                  scale="major", density=0.5, center=72, level=(-4, 0), vibrato=(0.05, 0.2)),
        lowpass=(4500, 11000),
        noise_db=(-48, -28),
        reverb=(0.05, 0.3),
    ),
    "reggae": dict(
        bpm=(62, 96),
        swing=(0.0, 0.4),
        human=0.008,
        span=16,
        progressions=[
            _bars("0:maj", "5:maj"),
            _bars("0:min", "5:min"),
            _bars("0:maj", "10:maj", "5:maj", "0:maj"),
        ],
        drums=[
            dict(kick={8: 1}, rim={8: 0.9}, hat={s: 0.4 for s in _EIGHTHS}),
            dict(kick={s: 1 for s in _QUARTERS}, rim={4: 0.8, 12: 0.8},
                 hat={s: 0.45 for s in _OFFBEATS}),
        ],
        kick=dict(f=(45, 65), decay=(0.12, 0.25)),
        snare=dict(decay=(0.05, 0.1), tone=(0.3, 0.6)),
        drum_level=(-10, -3),
        parts=[
            dict(env="pluck", tilt=(0.8, 1.4), decay=(0.05, 0.12), center=64, level=(-4, 0),
                 prob=1.0, rhythm=_steps(*[(s, 1, 0.9) for s in _OFFBEATS])),
            dict(env="organ", tilt=(1.2, 1.8), odd=0.6, attack=(0.005, 0.02), center=60,
                 level=(-12, -5), prob=0.5,
                 rhythm=_steps(*[(s, 1, 0.6) for s in (2, 3, 6, 7, 10, 11, 14, 15)])),
        ],
        bass=dict(style="reggae", tilt=(2.0, 3.0), level=(-2, 2)),
        lead=dict(prob=0.4, env="organ", tilt=(1.0, 1.6), attack=(0.01, 0.04), odd=0.5,
                  scale="mpent", density=0.3, center=72, level=(-10, -4), vibrato=(0.0, 0.1)),
        lowpass=(2500, 8000),
        noise_db=(-42, -22),
        reverb=(0.05, 0.35),
    ),
    "rock": dict(
        bpm=(96, 160),
        swing=(0.0, 0.1),
        human=0.007,
        span=16,
        progressions=[
            _bars("0:5", "10:5", "5:5", "0:5"),
            _bars("0:maj", "5:maj", "7:maj", "5:maj"),
            _bars("0:5", "5:5", "7:5", "7:5"),
            _bars("9:min", "5:maj", "0:maj", "7:maj"),
        ],
        drums=[
            dict(kick={0: 1, 8: 1, 10: 0.7}, snare={4: 1, 12: 1}, hat={s: 0.55 for s in _EIGHTHS},
                 crash={0: 0.5}),
            dict(kick={0: 1, 8: 1}, snare={4: 1, 12: 1}, ride={s: 0.5 for s in _EIGHTHS}),
        ],
        kick=dict(f=(50, 72), decay=(0.07, 0.16)),
        snare=dict(decay=(0.1, 0.22), tone=(0.2, 0.5)),
        drum_level=(-6, 0),
        parts=[
            dict(env="pluck", tilt=(0.9, 1.5), decay=(0.3, 0.8), drive=(2.5, 12.0), center=52,
                 level=(-3, 0), prob=1.0,
                 rhythm=_steps(*[(s, 2, 0.95 if s % 4 == 0 else 0.8) for s in _EIGHTHS])),
        ],
        bass=dict(style="root8", tilt=(1.3, 2.0), level=(-6, -1)),
        lead=dict(prob=0.5, env="pad", tilt=(0.8, 1.4), attack=(0.005, 0.03), release=(0.05, 0.15),
                  drive=(2.0, 8.0), scale="mpent", density=0.45, center=69, level=(-6, 0),
                  vibrato=(0.05, 0.3)),
        lowpass=(3000, 10000),
        noise_db=(-42, -22),
        reverb=(0.0, 0.3),
    ),
}

# Genres whose elements a clip may borrow (real genres are fuzzy: a rock song
# with a pop synth, a country song with a rock beat, a jazz-tinged blues).
_NEIGHBOURS = {
    "blues": ("jazz", "rock", "country"),
    "classical": ("jazz", "pop"),
    "country": ("blues", "rock", "pop"),
    "disco": ("pop", "hiphop", "reggae"),
    "hiphop": ("reggae", "pop", "disco"),
    "jazz": ("blues", "classical", "reggae"),
    "metal": ("rock",),
    "pop": ("disco", "rock", "hiphop", "country"),
    "reggae": ("hiphop", "pop", "blues"),
    "rock": ("metal", "pop", "blues", "country"),
}

# groups of style entries that are borrowed together, and the chance of each
_BORROWABLE = (
    (("bpm", "swing", "human"), 0.08),
    (("drums", "kick", "snare", "drum_level"), 0.08),
    (("parts",), 0.08),
    (("bass",), 0.08),
    (("lead",), 0.1),
    (("lowpass", "noise_db", "reverb"), 0.12),
)

_DESCR = """\
.. _genre_clips_dataset:

Synthetic genre clips
---------------------

**Data Set Characteristics:**

:Number of Instances: ``n_per_genre`` per genre
:Number of Classes: up to 10 (the GTZAN genres)
:Samples: ``round(duration * sr)`` float32 samples per clip, peak in [-1, 1]
:Generator: :func:`specgenre.datasets.make_genre_clips`

Music-like clips synthesised on the fly, with no download: each clip is a
small arrangement (drums, bass, chords, sometimes a melody) in the manner of
one GTZAN genre. The genres differ the way real ones do:

- blues: shuffle groove, dominant seventh chords in a 12-bar form, boogie
  bass, mildly overdriven plucked guitar, blues-scale licks;
- classical: no drums, slow bowed (string-like) attacks with vibrato,
  triads, arpeggios, hall reverb, slow and free tempo;
- country: "boom-chick" strums of bright twangy plucks, root-fifth bass,
  train beat, major chords;
- disco: four-on-the-floor kick around 120 BPM, open hi-hat on the off-beat,
  octave bass, string pads, minor seventh chords;
- hiphop: slow tempo, loud, long, low kick, dark pads, sparse harmony;
- jazz: swing ride pattern, brushes, walking bass, mellow piano seventh
  chords (ii-V-I), wide tempo range;
- metal: fast, heavily clipped (distorted) power chords on sixteenths,
  double kick;
- pop: bright, regular beat, I-V-vi-IV progressions, synth lead;
- reggae: slow one-drop or steppers beat, off-beat staccato skank chords,
  heavy dark bass;
- rock: medium tempo, overdriven power chords on eighths, backbeat.

Each clip may also borrow one element (tempo and groove, drum kit and
pattern, chord instruments, bass line, melody, or recording colour) from a
neighbouring genre (rock from metal, pop or blues; disco from pop; ...), as
real songs do. Every clip draws its own tempo, key, progression, swing, instrument
timbres (spectral tilt, attack, decay, distortion), mix levels, band limit
(recording colour), reverb and background noise from genre-dependent
ranges that overlap between genres. A simple model (per-band mean and
standard deviation of a log-mel spectrogram, logistic regression) is right
on about 74% of 30 s clips (15 per genre, 5-fold cross-validation, mean
over 3 seeds) and on 65-77% of 5 s clips (10 per genre): far above chance
(10%), well below 100%.

Clip ``k`` of a genre depends only on ``random_state``, the genre, ``k``,
``duration`` and ``sr`` (its seed is spawned from a
:class:`numpy.random.SeedSequence`), not on how many clips are generated.
This is not real music: use it to test pipelines and to compare methods
quickly, not to report genre recognition results.
"""


def _midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def _uniform(rng, lo_hi):
    lo, hi = lo_hi
    return lo if lo == hi else rng.uniform(lo, hi)


def _db(x):
    return 10.0 ** (x / 20.0)


def _add(buf, y, start, gain=1.0):
    """``buf[start:start+len(y)] += gain * y``, clipped to the buffer."""
    n = buf.shape[0]
    a, b = max(start, 0), min(start + y.shape[0], n)
    if b > a:
        buf[a:b] += np.float32(gain) * y[a - start : b - start]


class _Synth:
    """Renders one clip: holds its random generator, sample rate and note cache."""

    def __init__(self, rng, sr, ramp, t, colour):
        self.rng = rng
        self.sr = sr
        self.colour = colour  # magnitude response of the "recording", f (Hz) -> gain
        self._ramp = ramp  # 0, 1, 2, ... (float64), shared between clips
        self._t = t  # ramp / sr (float32)

    def ramp(self, n):
        """0, 1, ..., n - 1 as float64."""
        if n > self._ramp.shape[0]:  # a note longer than the shared ramp (rare)
            self._ramp = np.arange(n, dtype=np.float64)
            self._t = (self._ramp / self.sr).astype(np.float32)
        return self._ramp[:n]

    def times(self, n):
        """Times of the first ``n`` samples in seconds, float32."""
        self.ramp(n)
        return self._t[:n]

    # -- oscillators ------------------------------------------------------
    def table(self, tilt, n_harm, f_ref, odd=False):
        """One period of a harmonic series with amplitudes ``h**-tilt`` (jittered).

        The harmonics then go through the clip's recording colour, evaluated
        at ``h * f_ref`` (``f_ref``: typical pitch of the instrument).
        """
        rng = self.rng
        h = np.arange(1, n_harm + 1, dtype=np.float64)
        amp = h**-tilt * np.exp(rng.normal(0.0, 0.35, n_harm))
        if odd:
            amp[1::2] *= 0.08
        phase = rng.uniform(0.0, 2.0 * np.pi, n_harm)
        # sum_h amp_h sin(2 pi h x + phase_h), through sin(a + b) = sin a cos b + cos a sin b
        a_sin, a_cos = amp * np.cos(phase), amp * np.sin(phase)
        peak = np.abs(a_sin @ _HSIN[:n_harm] + a_cos @ _HCOS[:n_harm]).max()
        gain = self.colour(h * f_ref).astype(np.float64)  # after the peak: keeps the level
        wave = (a_sin * gain) @ _HSIN[:n_harm] + (a_cos * gain) @ _HCOS[:n_harm]
        return (wave / peak).astype(np.float32)

    def osc(self, table, freq, n, vibrato=0.0, vib_rate=5.5):
        """``n`` samples of wavetable ``table`` played at ``freq`` Hz (random start phase).

        ``vibrato`` is a depth in semitones (fading in over 0.3 s) at ``vib_rate`` Hz.
        """
        inc = freq * _TABLE_N / self.sr
        if vibrato > 0:
            t = self.times(n)
            lfo = self.osc(_SINE, vib_rate, n)
            # 2 ** (d / 12) ~ 1 + d ln2 / 12 for the small depths used here
            depth = np.minimum(t * np.float32(1.0 / 0.3), np.float32(1.0))
            depth *= np.float32(vibrato * np.log(2.0) / 12.0)
            lfo *= depth
            lfo += np.float32(1.0)
            ph = np.cumsum(lfo, dtype=np.float64)
            ph *= inc
            ph += self.rng.uniform(0, _TABLE_N)
        else:
            ph = self.ramp(n) * inc
            ph += self.rng.uniform(0, _TABLE_N)
        return table[ph.astype(np.int64) & _MASK]

    # -- instruments ------------------------------------------------------
    def instrument(self, spec):
        """Draw one instrument (timbre, envelope, distortion) from a part spec."""
        rng = self.rng
        center = spec.get("center", 60)
        top_hz = _midi_hz(center + 14)
        n_harm = int(np.clip(0.42 * self.sr / top_hz, 1, 40))
        tilt = _uniform(rng, spec["tilt"])
        odd = rng.random() < spec.get("odd", 0.0)
        f_ref = float(_midi_hz(center))
        inst = dict(
            env=spec["env"],
            table=self.table(tilt, n_harm, f_ref, odd),
            attack=_uniform(rng, spec.get("attack", (0.002, 0.006))),
            release=_uniform(rng, spec.get("release", (0.02, 0.05))),
            decay=_uniform(rng, spec.get("decay", (0.3, 0.6))),
            drive=_uniform(rng, spec.get("drive", (0.0, 0.0))),
            vibrato=_uniform(rng, spec.get("vibrato", (0.0, 0.0))),
            vib_rate=rng.uniform(4.5, 6.5),
            detune=rng.uniform(0.0, 0.004),
            center=center,
            cache={},
        )
        twang = spec.get("twang", 0.0)
        inst["twang"] = twang * rng.uniform(0.5, 1.0) if twang else 0.0
        if inst["twang"]:
            inst["bright"] = self.table(max(tilt - 0.7, 0.2), n_harm, f_ref)
        return inst

    def note(self, inst, midis, n):
        """A (chord) note of ``n`` samples, cached per (pitches, length)."""
        key = (midis, n)
        y = inst["cache"].get(key)
        if y is not None:
            return y
        sr = self.sr
        t = self.times(n)
        y = np.zeros(n, dtype=np.float32)
        bright = np.zeros(n, dtype=np.float32) if inst["twang"] else None
        for i, m in enumerate(midis):
            f = float(_midi_hz(m)) * (1.0 + inst["detune"] * (i % 2 - 0.5))
            y += self.osc(inst["table"], f, n, inst["vibrato"], inst["vib_rate"])
            if bright is not None:
                bright += self.osc(inst["bright"], f, n)
        if bright is not None:  # a bright attack that dies out fast: twang
            bright *= np.exp(t * np.float32(-1.0 / 0.06))
            bright *= np.float32(inst["twang"])
            y += bright
        y *= np.float32(1.0 / np.sqrt(len(midis)))
        if inst["env"] == "pluck":
            env = np.exp(t * np.float32(-1.0 / inst["attack"]))
            np.subtract(np.float32(1.0), env, out=env)
            env *= np.exp(t * np.float32(-1.0 / inst["decay"]))
        else:  # pad / organ: linear attack, slow decay to 0.85, linear release
            dur = n / sr
            att = min(inst["attack"], 0.5 * dur)
            rel = min(inst["release"], 0.5 * dur)
            env = t * np.float32(-0.15 / dur)
            env += np.float32(1.0)
            np.minimum(env, t * np.float32(1.0 / att), out=env)
            np.minimum(env, (np.float32(dur) - t) * np.float32(0.85 / rel), out=env)
            np.maximum(env, np.float32(0.0), out=env)
        y *= env
        if inst["drive"] > 0:
            d = np.float32(inst["drive"])
            y = np.tanh(d * y) / np.tanh(d)
        fade = min(int(_FADE_S * sr), n)
        if fade:
            y[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        inst["cache"][key] = y
        return y

    # -- drums -------------------------------------------------------------
    def _noise(self, n, brightness):
        """White noise, differentiated ``brightness`` times (tilted up, hi-hat like)."""
        x = self.rng.random(n + brightness, dtype=np.float32) - np.float32(0.5)
        for _ in range(brightness):
            x = np.diff(x)
        return x / (np.abs(x).max() + 1e-9)

    def drum_kit(self, style):
        rng, sr = self.rng, self.sr
        kit = {}
        kp = style.get("kick", dict(f=(50, 70), decay=(0.08, 0.2)))
        decay = _uniform(rng, kp["decay"])
        n = int(sr * min(5 * decay, 0.6))
        t = self.times(n)
        f_end, f_start = _uniform(rng, kp["f"]), rng.uniform(110, 220)
        # pitch sweeping down from f_start to f_end
        freq = np.exp(t * np.float32(-1.0 / rng.uniform(0.015, 0.05)))
        freq *= np.float32((f_start - f_end) * _TABLE_N / sr)
        freq += np.float32(f_end * _TABLE_N / sr)
        kick = _SINE[np.cumsum(freq, dtype=np.float64).astype(np.int64) & _MASK]
        kick *= np.exp(t * np.float32(-1.0 / decay))
        kick[: int(0.004 * sr)] += rng.uniform(0.1, 0.5) * self._noise(int(0.004 * sr), 1)
        kit["kick"] = kick

        sp = style.get("snare", dict(decay=(0.08, 0.2), tone=(0.2, 0.5)))
        decay = _uniform(rng, sp["decay"])
        n = int(sr * min(6 * decay, 1.0))
        t = self.times(n)
        tone = _uniform(rng, sp["tone"])
        body = self.osc(_SINE, rng.uniform(160, 240), n) * np.exp(t * np.float32(-1 / 0.05))
        noise = self._noise(n, int(rng.integers(0, 2))) * np.exp(-t / np.float32(decay))
        kit["snare"] = (tone * body + (1 - tone) * noise).astype(np.float32)

        n = int(0.25 * sr)
        t = self.times(n)
        rim = self.osc(_SINE, rng.uniform(380, 520), n) * np.exp(t * np.float32(-1 / 0.02))
        kit["rim"] = (0.6 * rim + 0.4 * self._noise(n, 1) * np.exp(-t / 0.01)).astype(np.float32)

        decay = rng.uniform(0.015, 0.06)
        n = int(sr * 6 * decay)
        kit["hat"] = self._noise(n, 2) * np.exp(-self.times(n) / np.float32(decay))
        decay = rng.uniform(0.12, 0.35)
        n = int(sr * 3 * decay)
        kit["openhat"] = self._noise(n, 2) * np.exp(-self.times(n) / np.float32(decay))

        decay = rng.uniform(0.3, 0.8)
        n = int(sr * 2 * decay)
        t = self.times(n)
        partials = rng.uniform(0.85, 1.15) * np.array([3100.0, 4270.0, 5150.0, 6730.0, 8140.0])
        ping = np.zeros(n, dtype=np.float32)
        for f in partials[partials < 0.45 * sr]:  # inharmonic metallic partials
            ping += self.osc(_SINE, f, n)
        ride = np.float32(0.1) * ping + np.float32(0.5) * self._noise(n, 2)
        ride *= np.exp(t * np.float32(-1.0 / decay))
        kit["ride"] = ride

        decay = rng.uniform(0.5, 1.0)
        n = int(sr * 2 * decay)
        kit["crash"] = self._noise(n, 1) * np.exp(-self.times(n) / np.float32(decay))

        decay = rng.uniform(0.05, 0.12)
        n = int(sr * 4 * decay)
        t = self.times(n)
        brush = self._noise(n, 1) * (t / np.float32(decay)) * np.exp(1 - t / np.float32(decay))
        kit["brush"] = (0.5 * brush).astype(np.float32)
        return {name: self.coloured(hit) for name, hit in kit.items()}

    def coloured(self, y):
        """``y`` through the recording colour (zero phase, via a short FFT)."""
        import scipy.fft

        n = scipy.fft.next_fast_len(y.shape[0], real=True)
        spec = scipy.fft.rfft(y, n=n)
        spec *= self.colour(scipy.fft.rfftfreq(n, 1.0 / self.sr))
        return scipy.fft.irfft(spec, n=n)[: y.shape[0]].astype(np.float32)


def _colour(rng, style):
    """Draw the "recording" of a clip: band limit, spectral tilt, optional bass cut.

    Returns the magnitude response ``f (Hz) -> gain`` of one to three one-pole
    low-passes, a tilt of -3..+3 dB per octave around 1 kHz and, for a third of
    the clips, a one-pole high-pass (a thin, bass-less recording).
    """
    lo, hi = style["lowpass"]
    cutoff = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    order = int(rng.integers(1, 4))
    tilt = rng.uniform(-0.5, 0.5)  # exponent of f / 1 kHz on power
    highpass = rng.uniform(60, 250) if rng.random() < 0.3 else None

    def gain(f):
        f = np.maximum(np.asarray(f, dtype=np.float32), np.float32(20.0))
        lp = np.sqrt(np.float32(1.0) + (f * np.float32(1.0 / cutoff)) ** 2)
        g = np.log(f * np.float32(1e-3))  # (f / 1 kHz) ** (tilt / 2) via exp/log
        g *= np.float32(0.5 * tilt)
        g = np.exp(g)
        for _ in range(order):
            g /= lp
        if highpass is not None:
            r = (f * np.float32(1.0 / highpass)) ** 2
            g *= np.sqrt(r / (np.float32(1.0) + r))
        return g

    return gain


def _voicing(key, degree, quality, center):
    """MIDI notes of a chord with its root in the octave below ``center``."""
    pc = (key + degree) % 12
    root = center - 6 + ((pc - (center - 6)) % 12)
    return tuple(int(root + i) for i in _CHORDS[quality])


def _render_clip(genre, seed, out, sr, ramp, t, work):
    """Render one clip of ``genre`` from ``seed`` into ``out`` (float32, 1-D).

    ``work`` is a scratch array of shape (2, len(out)).
    """
    n_samples = out.shape[0]
    rng = np.random.default_rng(seed)
    style = dict(_STYLES[genre])
    for keys, prob in _BORROWABLE:
        if rng.random() < prob:
            donor = _NEIGHBOURS[genre][rng.integers(len(_NEIGHBOURS[genre]))]
            for k in keys:
                if k in _STYLES[donor]:
                    style[k] = _STYLES[donor][k]
                else:
                    style.pop(k, None)
    syn = _Synth(rng, sr, ramp, t, _colour(rng, style))
    buf = out
    buf.fill(0.0)

    bpm = _uniform(rng, style["bpm"]) * np.exp(rng.normal(0.0, 0.02))
    step = 60.0 / bpm / 4.0  # one sixteenth, in seconds
    swing = _uniform(rng, style["swing"])
    human = style["human"] * rng.uniform(0.5, 1.5)
    key = int(rng.integers(12))
    prog = style["progressions"][rng.integers(len(style["progressions"]))]
    span = style["span"]
    offset = rng.uniform(0.0, step * span * len(prog))  # clip start within the progression
    n_steps = int(np.ceil((n_samples / sr + offset) / step)) + 1

    # onset (s, relative to clip start) of every sixteenth, with swing
    steps = np.arange(n_steps)
    pos = steps % 4
    shift = np.where(pos == 2, swing * 4 * step / 6.0, np.where(pos % 2 == 1, swing * 4 * step / 12.0, 0.0))
    onsets = steps * step + shift - offset

    first = max(int(offset / step) - 32, 0)  # earliest step that can reach the clip

    def onset_sample(s):
        return int(round((onsets[s] + rng.normal(0.0, human)) * sr))

    def chord_at(s):
        return prog[(s // span) % len(prog)]

    def active(s, dur):  # does an event at step s lasting dur steps touch the clip?
        return onsets[s] + dur * step > 0.0 and onsets[s] < n_samples / sr

    # -- drums ----------------------------------------------------------
    if style["drums"] is not None:
        kit = syn.drum_kit(style)
        pattern = style["drums"][rng.integers(len(style["drums"]))]
        level = _db(_uniform(rng, style["drum_level"]) + rng.uniform(-4, 4))
        inst_gain = {name: _db(rng.uniform(-5, 3)) for name in pattern}
        ghost = rng.uniform(0.0, 0.25)
        for s in range(first, n_steps):
            if not active(s, 4):
                continue
            bar_step = s % 16
            for name, hits in pattern.items():
                vel = hits.get(bar_step, 0.0)
                if name == "crash" and (s // 16) % 4:
                    vel = 0.0
                if vel == 0.0 and name == "snare" and rng.random() < ghost * 0.3:
                    vel = 0.2
                if vel > 0:
                    vel *= rng.uniform(0.8, 1.1)
                    _add(buf, kit[name], onset_sample(s), level * inst_gain[name] * vel)

    # -- chord parts ------------------------------------------------------
    for spec in style["parts"]:
        if rng.random() >= spec.get("prob", 1.0):
            continue
        inst = syn.instrument(spec)
        level = _db(_uniform(rng, spec["level"]) + rng.uniform(-4, 4))
        for bar in range(first // 16, n_steps // 16 + 1):
            for k, (st, dur, vel) in enumerate(spec["rhythm"]):
                s = bar * 16 + st
                if s >= n_steps or not active(s, dur + 8):
                    continue
                degree, quality = chord_at(s)
                notes = _voicing(key, degree, quality, inst["center"])
                if spec.get("arpeggio"):
                    notes = (notes[k % len(notes)] + 12 * ((k // len(notes)) % 2),)
                n = int(dur * step * sr)
                if inst["env"] == "pluck":  # let plucks ring a little past the next one
                    n = int((dur * step + min(inst["decay"], 0.15)) * sr)
                _add(buf, syn.note(inst, notes, max(n, 16)), onset_sample(s),
                     level * vel * rng.uniform(0.85, 1.0))

    # -- bass ---------------------------------------------------------------
    bspec = style["bass"]
    binst = syn.instrument(dict(env="pluck" if bspec["style"] != "bowed" else "pad",
                                tilt=bspec["tilt"], decay=(0.3, 0.8),
                                attack=(0.1, 0.3) if bspec["style"] == "bowed" else (0.003, 0.01),
                                release=(0.1, 0.3), center=40))
    level = _db(_uniform(rng, bspec["level"]) + rng.uniform(-4, 4))
    for bar in range(first // 16, n_steps // 16 + 1):
        for st, dur, midi, vel in _bass_line(bspec["style"], bar, key, chord_at, span, rng):
            s = bar * 16 + st
            if s >= n_steps or not active(s, dur):
                continue
            n = max(int(dur * step * sr), 16)
            _add(buf, syn.note(binst, (midi,), n), onset_sample(s), level * vel)

    # -- melody -------------------------------------------------------------
    lspec = style["lead"]
    if rng.random() < lspec["prob"]:
        inst = syn.instrument(lspec)
        level = _db(_uniform(rng, lspec["level"]) + rng.uniform(-4, 4))
        scale = np.array(_SCALES[lspec["scale"]])
        pitches = np.concatenate([key + scale + 12 * o for o in range(11)])
        pitches = pitches[np.abs(pitches - lspec["center"]) <= 9]
        idx = int(rng.integers(len(pitches)))
        density = lspec["density"] * rng.uniform(0.6, 1.3)
        s = first
        while s < n_steps:
            dur = int(rng.choice([2, 2, 4, 4, 6, 8]))
            if rng.random() < density and active(s, dur):
                idx = int(np.clip(idx + rng.integers(-2, 3), 0, len(pitches) - 1))
                n = int(dur * step * sr)
                if inst["env"] == "pluck":
                    n = int((dur * step + min(inst["decay"], 0.15)) * sr)
                _add(buf, syn.note(inst, (int(pitches[idx]),), max(n, 16)), onset_sample(s),
                     level * rng.uniform(0.7, 1.0))
            s += dur

    # -- recording: reverb, band limit, noise, gain ----------------------
    # (in place, with two scratch rows: no full-length temporaries)
    wet, tmp = work[0], work[1]
    rev = _uniform(rng, style["reverb"])
    if rev > 0.02:  # early reflections: four delayed, attenuated copies
        wet.fill(0.0)
        for d in np.sort(rng.uniform(0.02, 0.25, 4)):
            lag = min(int(d * sr), n_samples)
            np.multiply(buf[: n_samples - lag], np.float32(rev * np.exp(-d / 0.15)),
                        out=tmp[: n_samples - lag])
            wet[lag:] += tmp[: n_samples - lag]
        buf += wet
    # background noise (tape hiss, room): uniform 16-bit noise (four samples per
    # 64-bit draw), white or smoothed by a few 2-tap sums
    rms = float(np.sqrt(np.dot(buf, buf) / n_samples)) or 1.0
    raw = rng.bit_generator.random_raw((n_samples + 3) // 4)
    noise, other = wet, tmp
    np.copyto(noise, raw.astype("<u8", copy=False).view("<i2")[:n_samples], casting="unsafe")
    for _ in range(int(rng.choice([0, 0, 1, 2, 4]))):
        other[0] = noise[0]
        np.add(noise[1:], noise[:-1], out=other[1:])
        noise, other = other, noise
    mean = float(noise.mean())
    std = np.sqrt(max(float(np.dot(noise, noise)) / n_samples - mean**2, 1e-24))
    noise -= np.float32(mean)
    noise *= np.float32(rms * _db(_uniform(rng, style["noise_db"])) / std)
    buf += noise
    peak = max(float(buf.max()), -float(buf.min()))
    if peak > 0:
        buf *= np.float32(rng.uniform(0.3, 0.95) / peak)


def _bass_line(style, bar, key, chord_at, span, rng):
    """(step, duration, midi, velocity) of the bass in one bar."""
    out = []

    def root(st, octave=0):
        degree, _ = chord_at(bar * 16 + st)
        return 28 + (key + degree) % 12 + 12 * octave

    def tone(st, i):
        degree, quality = chord_at(bar * 16 + st)
        iv = _CHORDS[quality]
        return 28 + (key + degree) % 12 + iv[i % len(iv)]

    if style == "root8":
        out = [(s, 2, root(s, 1), 0.9 if s % 4 == 0 else 0.7) for s in _EIGHTHS]
    elif style == "root16":
        out = [(s, 1, root(s), 0.8) for s in range(16)]
    elif style == "octave":
        out = [(s, 2, root(s, 1 if s % 4 else 0), 0.9) for s in _EIGHTHS]
    elif style == "rootfifth":
        out = [(0, 4, root(0, 1), 1.0), (8, 4, tone(8, 2) + 12, 0.9)]
    elif style == "boogie":
        walk = (0, 4, 7, 9, 10, 9, 7, 4)
        out = [(s, 2, root(s, 1) + walk[k], 0.8) for k, s in enumerate(_EIGHTHS)]
    elif style == "walk":
        for k, s in enumerate(_QUARTERS):
            if k == 3:
                nxt = root(s + 4 if s + 4 < 16 else 0, 1)
                midi = nxt + int(rng.choice([-1, 1, 2]))
            else:
                midi = tone(s, int(rng.integers(0, 4))) + 12
            out.append((s, 4, midi, 0.9))
    elif style == "sub":
        out = [(0, 6, root(0, 1), 1.0), (7, 3, root(7, 1), 0.8), (10, 6, root(10, 1), 0.9)]
    elif style == "reggae":
        out = [(0, 3, root(0, 1), 1.0), (4, 2, tone(4, 2) + 12, 0.8), (6, 2, root(6, 2), 0.7),
               (10, 3, root(10, 1), 0.9), (14, 2, tone(14, 1) + 12, 0.7)]
    elif style == "bowed":
        out = [(0, 8, root(0, 1), 0.9), (8, 8, root(8, 1), 0.8)]
    else:  # pragma: no cover - internal table
        raise ValueError(f"unknown bass style {style!r}")
    return out


def _check_seed(random_state):
    """Entropy (int) for the clip seeds from ``random_state``."""
    if random_state is None:
        return np.random.SeedSequence().entropy
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int; got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    # let sklearn raise its usual error for anything else
    return int(check_random_state(random_state).randint(2**31 - 1))


def make_genre_clips(n_per_genre=10, *, genres=None, duration=30.0, sr=22050, random_state=None):
    """Generate synthetic music-like clips of the GTZAN genres.

    A built-in stand-in for GTZAN that needs no download: each clip is a
    small synthesised arrangement (drums, bass, chords, sometimes a melody)
    whose tempo, groove, percussion, timbre, harmony and recording colour
    follow one genre, with per-clip random variation (tempo, key,
    progression, instruments, mix, band limit, noise) drawn from ranges that
    overlap between genres. Classes are learnable but not trivially
    separable: per-band mean/std of a log-mel spectrogram with a logistic
    regression reaches about 74% accuracy on 30 s clips (chance: 10%).
    Read ``DESCR`` for what makes each genre.

    Parameters
    ----------
    n_per_genre : int, default=10
        Number of clips of each genre.
    genres : list of str, default=None
        Genres to generate, among :data:`~specgenre.datasets.GENRES`; all ten
        by default.
    duration : float, default=30.0
        Length of each clip in seconds (30 s like GTZAN).
    sr : int, default=22050
        Sample rate in Hz.
    random_state : int, numpy.random.Generator, RandomState or None, default=None
        Seed. The same int gives identical clips; clip ``k`` of a genre does
        not depend on ``n_per_genre`` or on the other genres requested.
        None draws fresh entropy.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of shape (n_genres * n_per_genre, round(duration * sr)), dtype float32
            The clips, peak amplitude in [0.3, 0.95]; genre by genre (in
            sorted order), ``n_per_genre`` consecutive rows each.
        target : ndarray of str, shape (n_clips,)
            Genre of each clip.
        target_names : list of str
            Sorted genres.
        track_ids : ndarray of str, shape (n_clips,)
            ``"<genre>.000NN"`` ids, GTZAN style (use them as ``groups`` when
            segmenting the clips).
        sr : int
            Sample rate.
        DESCR : str
            Description of the generator.

    See Also
    --------
    load_gtzan : The real data set.

    Examples
    --------
    >>> from specgenre.datasets import make_genre_clips
    >>> clips = make_genre_clips(2, genres=["metal", "jazz"], duration=3.0, random_state=0)
    >>> clips.data.shape, clips.data.dtype
    ((4, 66150), dtype('float32'))
    >>> clips.target.tolist()
    ['jazz', 'jazz', 'metal', 'metal']
    >>> clips.track_ids.tolist()
    ['jazz.00000', 'jazz.00001', 'metal.00000', 'metal.00001']
    """
    if (
        isinstance(n_per_genre, bool)
        or not isinstance(n_per_genre, numbers.Integral)
        or n_per_genre < 1
    ):
        raise ValueError(f"n_per_genre must be an int >= 1; got {n_per_genre!r}.")
    if isinstance(duration, bool) or not isinstance(duration, numbers.Real) or not duration > 0:
        raise ValueError(f"duration must be a positive number of seconds; got {duration!r}.")
    if not np.isfinite(duration):
        raise ValueError(f"duration must be finite; got {duration!r}.")
    if isinstance(sr, bool) or not isinstance(sr, numbers.Integral) or sr < 1000:
        raise ValueError(f"sr must be an int >= 1000 (Hz); got {sr!r}.")
    if genres is None:
        genres = GENRES
    elif isinstance(genres, str):
        genres = (genres,)
    genres = list(genres)
    if not genres:
        raise ValueError("genres must be None or a non-empty list of genre names.")
    unknown = [g for g in genres if g not in GENRES]
    if unknown:
        raise ValueError(f"unknown genre(s) {unknown}; known genres are {list(GENRES)}.")
    if len(set(genres)) != len(genres):
        raise ValueError(f"genres contains duplicates: {genres}.")
    genres = sorted(genres)

    n_samples = int(round(duration * sr))
    if n_samples < 1:
        raise ValueError(
            f"duration * sr must give at least one sample; got duration={duration}, sr={sr}."
        )
    entropy = _check_seed(random_state)
    # shared time ramps, long enough for the longest note (16 sixteenths at 50 BPM)
    ramp = np.arange(int(6 * sr) + 1, dtype=np.float64)
    t = (ramp / sr).astype(np.float32)
    n_clips = len(genres) * n_per_genre
    data = np.empty((n_clips, n_samples), dtype=np.float32)
    work = np.empty((2, n_samples), dtype=np.float32)
    target, track_ids = [], []
    row = 0
    for genre in genres:
        g = GENRES.index(genre)
        for k in range(int(n_per_genre)):
            # == SeedSequence(entropy).spawn(10)[g].spawn(n)[k], for any n > k
            seed = np.random.SeedSequence(entropy, spawn_key=(g, k))
            _render_clip(genre, seed, data[row], sr, ramp, t, work)
            target.append(genre)
            track_ids.append(f"{genre}.{k:05d}")
            row += 1
    return Bunch(
        data=data,
        target=np.array(target, dtype=str),
        target_names=list(genres),
        track_ids=np.array(track_ids, dtype=str),
        sr=int(sr),
        DESCR=_DESCR,
    )
