//! Deterministic, synthetic "phone call" recordings for the demo seeder.
//!
//! The demo needs a few hundred recordings that look and sound like the
//! real thing (Twilio-style 8 kHz mono 16-bit PCM) without shipping any
//! audio files. [`synthesize`] renders speech-like audio with a tiny formant
//! synthesizer (a band-limited glottal buzz through three resonators, plus
//! filtered-noise consonants), then packs the same samples as a WAV file and
//! as an MP3 encoded by LAME (through the `mp3lame-encoder` crate).
//!
//! Everything is driven by a seeded SplitMix64 generator, so a given
//! `(seed, seconds)` pair always produces the same bytes on the same build.

use std::f32::consts::{PI, TAU};
use std::num::NonZeroU32;

use anyhow::{Context, anyhow, bail};
use mp3lame_encoder::{Builder, FlushGap, Mode, MonoPcm, Quality, VbrMode};

/// Sample rate of the synthesized PCM and of the WAV file, in Hz.
const SAMPLE_RATE: u32 = 8_000;
/// Sample rate of the MP3 stream, in Hz (MPEG-2 Layer III).
const MP3_SAMPLE_RATE: u32 = 16_000;
/// Longest clip `synthesize` accepts, in seconds (one hour; peak memory is ~60 MB per 10 min).
const MAX_SECONDS: u32 = 60 * 60;

const SR: f32 = SAMPLE_RATE as f32;
/// Parameters are smoothed and filters retuned once per block of this many samples.
const BLOCK: usize = 16;
/// Samples handed to LAME per call.
const MP3_CHUNK: usize = 16_384;

/// A synthesized recording in both formats.
pub struct Clip {
    /// RIFF/WAVE file: PCM, 1 channel, 8000 Hz, 16 bits per sample.
    pub wav: Vec<u8>,
    /// MP3 file: MPEG-2 Layer III, mono, 16 kHz, VBR around 22 kbit/s, with a Xing/LAME tag.
    pub mp3: Vec<u8>,
}

/// Synthesizes `seconds` of call-like audio (8 kHz, mono, 16-bit PCM, like Twilio's recordings),
/// deterministic from `seed`: alternating "speaker" turns of voiced, speech-like sound (a few
/// formant-like harmonics with pitch contour and syllable-rate amplitude envelope; two speakers
/// with different pitch), short pauses, a faint line-noise floor. Not pure beeps: it should sound
/// like muffled talking. Then encodes MP3 (mono, 8 kHz or 16 kHz sample rate as the encoder
/// allows, low bitrate ~16–32 kbps, so a 10-minute clip stays ~1–2 MB).
///
/// The WAV is a canonical 44-byte-header RIFF/WAVE file. The MP3 is MPEG-2 Layer III, mono,
/// 16 kHz, LAME VBR (about 22 kbit/s here, ~165 kB per minute) with a Xing/LAME tag, so
/// gapless decoders output the same number of samples as the WAV (to within 12 ms) and
/// frame-counting tools such as ffprobe report at most ~0.1 s more.
///
/// Same `seed` and `seconds` give identical bytes (on the same build and platform: the
/// synthesis uses `f32` math from the platform's `libm`).
///
/// # Errors
///
/// Fails if `seconds` is 0 or more than 3600, or if the MP3 encoder reports an error.
pub fn synthesize(seed: u64, seconds: u32) -> anyhow::Result<Clip> {
    if seconds == 0 {
        bail!("cannot synthesize an empty recording (seconds = 0)");
    }
    if seconds > MAX_SECONDS {
        bail!("refusing to synthesize {seconds} s of audio (limit is {MAX_SECONDS} s)");
    }
    let samples = render(seed, seconds as usize * SAMPLE_RATE as usize);
    let wav = encode_wav(&samples)?;
    let mp3 = encode_mp3(&samples).context("encoding synthesized audio as MP3")?;
    Ok(Clip { wav, mp3 })
}

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and good enough for audio; fully deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_5EED)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }

    fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// Uniform in `[-1, 1)`.
    fn bipolar(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }
}

/// Cheap per-sample white noise (xorshift32), in `[-1, 1)`.
struct Noise(u32);

impl Noise {
    fn new(rng: &mut Rng) -> Self {
        // xorshift32 must never be seeded with 0.
        Noise((rng.next_u64() >> 32) as u32 | 1)
    }

    fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x >> 8) as f32 * (2.0 / (1u32 << 24) as f32) - 1.0
    }
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

/// Two-pole resonator (Klatt style), unity gain at DC.
#[derive(Clone, Copy, Default)]
struct Resonator {
    a: f32,
    b: f32,
    c: f32,
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn tune(&mut self, freq: f32, bandwidth: f32) {
        let r = (-PI * bandwidth / SR).exp();
        self.c = -r * r;
        self.b = 2.0 * r * (TAU * freq / SR).cos();
        self.a = 1.0 - self.b - self.c;
    }

    fn process(&mut self, x: f32) -> f32 {
        let y = self.a * x + self.b * self.y1 + self.c * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// RBJ biquad, used for the telephone band-pass.
#[derive(Clone, Copy)]
struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl Biquad {
    fn new(b: [f32; 3], a0: f32, a1: f32, a2: f32) -> Self {
        Biquad {
            b0: b[0] / a0,
            b1: b[1] / a0,
            b2: b[2] / a0,
            a1: a1 / a0,
            a2: a2 / a0,
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn high_pass(freq: f32, q: f32) -> Self {
        let w = TAU * freq / SR;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * q);
        let b = [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0];
        Biquad::new(b, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
    }

    fn low_pass(freq: f32, q: f32) -> Self {
        let w = TAU * freq / SR;
        let (sin, cos) = w.sin_cos();
        let alpha = sin / (2.0 * q);
        let b = [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0];
        Biquad::new(b, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
    }

    fn process(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.b1 * self.x1 + self.b2 * self.x2
            - self.a1 * self.y1
            - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Polynomial band-limited step correction for the sawtooth oscillator.
fn poly_blep(t: f32, dt: f32) -> f32 {
    if t < dt {
        let t = t / dt;
        t + t - t * t - 1.0
    } else if t > 1.0 - dt {
        let t = (t - 1.0) / dt;
        t * t + t + t + 1.0
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------
// The "score": what to say, as a list of articulatory targets
// ---------------------------------------------------------------------------

/// Vowel formant targets (F1, F2, F3) in Hz for an adult male vocal tract.
const VOWELS: [[f32; 3]; 8] = [
    [730.0, 1090.0, 2440.0], // a (father)
    [530.0, 1840.0, 2480.0], // e (bed)
    [270.0, 2290.0, 3010.0], // i (beet)
    [570.0, 840.0, 2410.0],  // o (bought)
    [300.0, 870.0, 2240.0],  // u (boot)
    [500.0, 1500.0, 2500.0], // schwa
    [660.0, 1720.0, 2410.0], // ae (bat)
    [440.0, 1020.0, 2240.0], // uh (book)
];

/// Nasal murmur formants (m, n).
const NASAL: [f32; 3] = [280.0, 1300.0, 2300.0];

/// One stretch of sound with steady targets; the renderer glides into them.
#[derive(Clone, Copy)]
struct Segment {
    /// Length in samples.
    len: usize,
    /// Target formant frequencies (already scaled for the speaker).
    formants: [f32; 3],
    /// Target voicing amplitude (0 = silent glottis).
    voice: f32,
    /// Target frication (noise) amplitude.
    noise: f32,
    /// Center frequency of the frication noise, Hz.
    noise_freq: f32,
    /// Target pitch in Hz.
    f0: f32,
    /// Amplitude smoothing coefficient per block (higher = faster attack/decay).
    amp_rate: f32,
    /// Aspiration noise mixed into the voicing, relative to it.
    breath: f32,
}

/// Per-speaker traits.
#[derive(Clone, Copy)]
struct Speaker {
    f0: f32,
    formant_scale: f32,
    level: f32,
    breath: f32,
    rate: f32,
}

impl Speaker {
    fn random(rng: &mut Rng, high: bool) -> Self {
        if high {
            Speaker {
                f0: rng.range(180.0, 230.0),
                formant_scale: rng.range(1.12, 1.2),
                level: rng.range(0.55, 0.9),
                breath: rng.range(0.04, 0.09),
                rate: rng.range(0.85, 1.1),
            }
        } else {
            Speaker {
                f0: rng.range(95.0, 135.0),
                formant_scale: rng.range(0.95, 1.03),
                level: rng.range(0.8, 1.0),
                breath: rng.range(0.02, 0.06),
                rate: rng.range(0.9, 1.15),
            }
        }
    }
}

/// Builds the segment list covering at least `total` samples.
struct Composer {
    rng: Rng,
    segments: Vec<Segment>,
    len: usize,
    last_formants: [f32; 3],
    breath: f32,
}

/// Milliseconds to samples.
fn ms(ms: f32) -> usize {
    (ms * SR / 1000.0) as usize
}

impl Composer {
    /// A silent segment holding the current articulation; callers override fields.
    fn base(&self, len: usize, formants: [f32; 3], f0: f32) -> Segment {
        Segment {
            len,
            formants,
            voice: 0.0,
            noise: 0.0,
            noise_freq: 2500.0,
            f0,
            amp_rate: 0.3,
            breath: self.breath,
        }
    }

    fn push(&mut self, seg: Segment) {
        self.len += seg.len;
        self.segments.push(seg);
    }

    fn silence(&mut self, millis: f32) {
        let seg = Segment {
            amp_rate: 0.25,
            ..self.base(ms(millis), self.last_formants, 0.0)
        };
        self.push(seg);
    }

    /// A random vowel target for this speaker.
    fn vowel(&mut self, sp: &Speaker) -> [f32; 3] {
        let v = VOWELS[self.rng.int(0, VOWELS.len() as u32 - 1) as usize];
        let mut f = [0.0; 3];
        for (out, base) in f.iter_mut().zip(v) {
            *out = base * sp.formant_scale * self.rng.range(0.94, 1.06);
        }
        // Keep F3 safely below Nyquist (4 kHz).
        f[2] = f[2].min(3400.0);
        f
    }

    /// One syllable: optional consonant onset, a vowel nucleus (sometimes a
    /// diphthong) with a pitch movement, and an optional consonant coda.
    fn syllable(&mut self, sp: &Speaker, f0: f32, stress: f32) {
        let rate = sp.rate;
        let vowel = self.vowel(sp);
        let level = sp.level * stress;
        let here = self.last_formants;

        // Onset.
        match self.rng.int(0, 9) {
            0..=2 => {
                // Fricative: s / sh / f.
                let len = ms(self.rng.range(50.0, 110.0) * rate);
                let seg = Segment {
                    noise: level * self.rng.range(0.15, 0.35),
                    noise_freq: self.rng.range(2200.0, 3500.0),
                    ..self.base(len, here, f0)
                };
                self.push(seg);
            }
            3..=5 => {
                // Plosive: closure, then a short burst as the vowel starts.
                let closure = ms(self.rng.range(25.0, 55.0) * rate);
                let seg = Segment {
                    amp_rate: 0.5,
                    ..self.base(closure, here, f0)
                };
                self.push(seg);
                let burst = ms(self.rng.range(8.0, 18.0));
                let seg = Segment {
                    noise: level * self.rng.range(0.3, 0.6),
                    noise_freq: self.rng.range(1200.0, 3200.0),
                    amp_rate: 0.9,
                    ..self.base(burst, vowel, f0)
                };
                self.push(seg);
            }
            6..=7 => {
                // Nasal murmur (m, n): quiet, low, voiced.
                let len = ms(self.rng.range(45.0, 80.0) * rate);
                let seg = Segment {
                    voice: level * 0.35,
                    ..self.base(len, NASAL.map(|f| f * sp.formant_scale), f0 * 0.97)
                };
                self.push(seg);
            }
            _ => {}
        }

        // Nucleus: two halves so pitch (and, for diphthongs, the vowel) can move.
        let nucleus = self.rng.range(90.0, 200.0) * rate * (0.8 + 0.3 * stress);
        let half = ms(nucleus / 2.0);
        let rise = 1.0 + 0.12 * stress * self.rng.bipolar();
        let seg = Segment {
            voice: level,
            amp_rate: 0.35,
            ..self.base(half, vowel, f0 * rise)
        };
        self.push(seg);
        let end_vowel = if self.rng.chance(0.35) {
            self.vowel(sp)
        } else {
            vowel
        };
        let fall = 1.0 + self.rng.range(-0.1, 0.03);
        let seg = Segment {
            voice: level * 0.8,
            amp_rate: 0.2,
            ..self.base(half, end_vowel, f0 * fall)
        };
        self.push(seg);
        self.last_formants = end_vowel;

        // Coda: a trailing fricative now and then.
        if self.rng.chance(0.25) {
            let len = ms(self.rng.range(40.0, 90.0) * rate);
            let seg = Segment {
                noise: level * self.rng.range(0.1, 0.25),
                noise_freq: self.rng.range(2400.0, 3500.0),
                ..self.base(len, end_vowel, f0)
            };
            self.push(seg);
        }
    }

    /// A phrase: syllables grouped into words, with declining pitch.
    fn phrase(&mut self, sp: &Speaker, syllables: u32) {
        let start = self.rng.range(1.05, 1.2);
        let end = self.rng.range(0.82, 0.95);
        let question = self.rng.chance(0.15);
        for i in 0..syllables {
            let t = i as f32 / syllables.max(2).saturating_sub(1) as f32;
            let mut contour = start + (end - start) * t;
            if question && i + 2 >= syllables {
                contour *= 1.25;
            }
            let stress = if self.rng.chance(0.3) {
                self.rng.range(1.0, 1.25)
            } else {
                self.rng.range(0.6, 0.9)
            };
            let accent = 1.0 + (stress - 0.9) * 0.25;
            self.syllable(sp, sp.f0 * contour * accent, stress);
            // Word boundary: a brief gap now and then.
            if self.rng.chance(0.3) {
                let gap = self.rng.range(20.0, 90.0);
                self.silence(gap);
            }
        }
    }
}

/// Writes the whole conversation plan.
fn compose(seed: u64, total: usize) -> Vec<Segment> {
    let mut rng = Rng::new(seed);
    let high_first = rng.chance(0.5);
    let speakers = [
        Speaker::random(&mut rng, high_first),
        Speaker::random(&mut rng, !high_first),
    ];
    let mut c = Composer {
        rng,
        segments: Vec::with_capacity(total / 400 + 16),
        len: 0,
        last_formants: VOWELS[5],
        breath: speakers[0].breath,
    };
    // A moment of line noise before anyone speaks.
    let lead = c.rng.range(150.0, 500.0);
    c.silence(lead);
    let mut who = 0;
    while c.len < total {
        let sp = speakers[who];
        c.breath = sp.breath;
        let backchannel = c.rng.chance(0.15);
        let phrases = if backchannel { 1 } else { c.rng.int(1, 3) };
        for p in 0..phrases {
            let syllables = if backchannel {
                c.rng.int(1, 2)
            } else {
                c.rng.int(3, 14)
            };
            c.phrase(&sp, syllables);
            if p + 1 < phrases {
                let pause = c.rng.range(150.0, 450.0);
                c.silence(pause);
            }
            if c.len >= total {
                break;
            }
        }
        let turn_gap = c.rng.range(250.0, 900.0);
        c.silence(turn_gap);
        who = 1 - who;
    }
    c.segments
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Renders `total` samples of 16-bit PCM.
fn render(seed: u64, total: usize) -> Vec<i16> {
    let segments = compose(seed, total);
    let mut out = vec![0.0f32; total];

    // Separate streams, so that tweaking the score does not shift the noise and vice versa.
    let mut jitter_rng = Rng::new(seed ^ 0xA5A5_5A5A_0F0F_F0F0);
    let mut noise = Noise::new(&mut jitter_rng);
    let mut line_noise = Noise::new(&mut jitter_rng);
    let mut tract = [Resonator::default(); 3];
    let mut fric = Resonator::default();
    let bandwidths = [70.0f32, 110.0, 170.0];

    let mut formants = VOWELS[5];
    let mut f0 = 120.0f32;
    let mut voice = 0.0f32;
    let mut fnoise = 0.0f32;
    let mut noise_freq = 3000.0f32;
    let mut phase = 0.0f32;
    let mut tilt = 0.0f32;
    let mut drift = 0.0f32;

    let mut pos = 0usize;
    'segments: for seg in &segments {
        let end = (pos + seg.len).min(total);
        while pos < end {
            // Control-rate update: glide towards the segment's targets.
            for (f, target) in formants.iter_mut().zip(seg.formants) {
                *f += (target - *f) * 0.05;
            }
            if seg.f0 > 0.0 {
                f0 += (seg.f0 - f0) * 0.06;
            }
            voice += (seg.voice - voice) * seg.amp_rate;
            fnoise += (seg.noise - fnoise) * seg.amp_rate;
            noise_freq += (seg.noise_freq - noise_freq) * 0.3;
            drift = drift * 0.97 + 0.004 * jitter_rng.bipolar();
            for ((res, f), bw) in tract.iter_mut().zip(formants).zip(bandwidths) {
                res.tune(f, bw + f * 0.02);
            }
            fric.tune(noise_freq, 600.0);

            let pitch = (f0 * (1.0 + drift)).clamp(60.0, 400.0);
            let dt = pitch / SR;
            let block_end = (pos + BLOCK).min(end);
            for sample in &mut out[pos..block_end] {
                // Glottal source: band-limited falling sawtooth, softened by a one-pole tilt.
                phase += dt;
                if phase >= 1.0 {
                    phase -= 1.0;
                }
                let saw = 1.0 - 2.0 * phase + poly_blep(phase, dt);
                tilt += (saw - tilt) * 0.85;
                let n = noise.next();
                let excitation = voice * (tilt + seg.breath * n);
                let mut y = excitation;
                for res in &mut tract {
                    y = res.process(y);
                }
                y += fric.process(fnoise * n) * 0.5;
                *sample = y;
            }
            pos = block_end;
            if pos >= total {
                break 'segments;
            }
        }
    }

    finish(&mut out, &mut line_noise);
    out.iter().map(|&x| to_i16(x)).collect()
}

/// Telephone band-pass, loudness normalisation, soft limiting, fade-out, line noise.
fn finish(buf: &mut [f32], noise: &mut Noise) {
    let mut hp = Biquad::high_pass(280.0, 0.707);
    let mut hp2 = Biquad::high_pass(200.0, 0.6);
    let mut lp = Biquad::low_pass(3400.0, 0.707);
    // Mild pre-emphasis, like a handset microphone's presence rise.
    let mut previous = 0.0f32;
    for x in buf.iter_mut() {
        let emphasised = *x - 0.5 * previous;
        previous = *x;
        *x = lp.process(hp2.process(hp.process(emphasised)));
    }

    // Normalise the level of the *speech* (20 ms frames within 30 dB of the
    // loudest frame) to -21 dBFS RMS, a typical telephone level.
    let frame = (SR / 50.0) as usize;
    let energies: Vec<f32> = buf
        .chunks(frame)
        .map(|c| c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32)
        .collect();
    let loudest = energies.iter().copied().fold(0.0f32, f32::max);
    let (sum, count) = energies
        .iter()
        .filter(|&&e| e > loudest * 1e-3)
        .fold((0.0f64, 0usize), |(s, n), &e| (s + f64::from(e), n + 1));
    if count > 0 && sum > 0.0 {
        let rms = (sum / count as f64).sqrt() as f32;
        let gain = 0.089 / rms;
        for x in buf.iter_mut() {
            *x = soft_clip(*x * gain);
        }
    }

    // The score is cut off mid-word at the end; fade the last 30 ms out.
    let fade = ms(30.0).min(buf.len());
    let start = buf.len() - fade;
    for (i, x) in buf[start..].iter_mut().enumerate() {
        *x *= 1.0 - (i + 1) as f32 / fade as f32;
    }

    // Faint line noise: slightly low-passed hiss around -62 dBFS.
    let mut hiss = 0.0f32;
    for x in buf.iter_mut() {
        hiss += (noise.next() - hiss) * 0.5;
        *x += 0.0012 * hiss;
    }
}

/// Leaves quiet samples alone and bends peaks smoothly towards -1 dBFS, so
/// that neither the WAV nor the decoded MP3 (which overshoots a little) clips.
fn soft_clip(x: f32) -> f32 {
    const KNEE: f32 = 0.5;
    const CEILING: f32 = 0.89;
    let a = x.abs();
    if a <= KNEE {
        x
    } else {
        let room = CEILING - KNEE;
        (KNEE + room * ((a - KNEE) / room).tanh()).copysign(x)
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

// ---------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------

/// A canonical 44-byte RIFF/WAVE header followed by little-endian PCM.
fn encode_wav(samples: &[i16]) -> anyhow::Result<Vec<u8>> {
    const CHANNELS: u16 = 1;
    const BITS: u16 = 16;
    let block_align = CHANNELS * BITS / 8;
    let byte_rate = SAMPLE_RATE * u32::from(block_align);
    let data_len = u32::try_from(samples.len() * usize::from(block_align))
        .ok()
        .filter(|len| *len <= u32::MAX - 36)
        .ok_or_else(|| anyhow!("recording too long for a WAV file"))?;

    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&CHANNELS.to_le_bytes());
    wav.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    wav.extend_from_slice(&byte_rate.to_le_bytes());
    wav.extend_from_slice(&block_align.to_le_bytes());
    wav.extend_from_slice(&BITS.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    Ok(wav)
}

/// Half-band interpolator that doubles the sample rate (8 kHz to 16 kHz).
///
/// Even output samples are the input samples; odd ones are interpolated
/// halfway between with a 32-tap Blackman-windowed sinc. LAME can resample
/// by itself, but its resampler costs more than the whole encode. Shorter
/// filters leave images above 4 kHz that the VBR encoder then spends bits on.
fn upsample(samples: &[i16]) -> Vec<i16> {
    const HALF: usize = 16;
    // taps[k] weighs the input samples k + 1/2 away from the interpolated point.
    let mut taps = [0.0f32; HALF];
    for (k, tap) in taps.iter_mut().enumerate() {
        let t = k as f32 + 0.5;
        let sinc = (PI * t).sin() / (PI * t);
        // Position within the Blackman window: 0.5 at the centre, 1.0 at the edge.
        let w = 0.5 + t / (2 * HALF) as f32;
        let window = 0.42 - 0.5 * (TAU * w).cos() + 0.08 * (2.0 * TAU * w).cos();
        *tap = sinc * window;
    }
    let sum = 2.0 * taps.iter().sum::<f32>();
    for tap in &mut taps {
        *tap /= sum;
    }

    // Zero padding on both sides keeps the inner loop free of edge cases.
    let mut padded = vec![0.0f32; samples.len() + 2 * HALF];
    for (p, &s) in padded[HALF..].iter_mut().zip(samples) {
        *p = f32::from(s);
    }
    let mut out = vec![0i16; 2 * samples.len()];
    for (n, pair) in out.chunks_exact_mut(2).enumerate() {
        // Input sample n is padded[n + HALF]; the new point lies between it and the next.
        let window = &padded[n + 1..n + 1 + 2 * HALF];
        let mut acc = 0.0f32;
        for k in 0..HALF {
            acc += taps[k] * (window[HALF - 1 - k] + window[HALF + k]);
        }
        pair[0] = samples[n];
        pair[1] = acc.round().clamp(-32768.0, 32767.0) as i16;
    }
    out
}

/// Samples per MPEG-2 Layer III frame.
const MP3_FRAME: usize = 576;
/// Longest tail, in 16 kHz samples (12 ms), that [`encode_mp3`] may leave out; see there.
const MP3_MAX_TRIM: usize = 192;

/// Encodes mono 8 kHz PCM as a 16 kHz MPEG-2 Layer III VBR stream (about 22 kbit/s on this
/// material) with a Xing + LAME tag.
///
/// The tag carries the frame count (duration and seeking for VBR) and LAME's encoder delay
/// and padding, so gapless decoders (ffmpeg, browsers) output exactly the input length.
/// Tools that only count frames (ffprobe's `duration`) report `frames × 576` samples, which
/// also counts 1152 samples of delay plus the final frame's padding. When that padding would
/// push the estimate more than 0.1 s past the real length, the last few samples (at most
/// [`MP3_MAX_TRIM`], 12 ms) are left out so the stream ends on a frame boundary.
fn encode_mp3(samples: &[i16]) -> anyhow::Result<Vec<u8>> {
    let mut builder = Builder::new().ok_or_else(|| anyhow!("LAME: could not allocate encoder"))?;
    builder
        .set_num_channels(1)
        .map_err(|e| anyhow!("LAME: set channels: {e}"))?;
    builder
        .set_mode(Mode::Mono)
        .map_err(|e| anyhow!("LAME: set mode: {e}"))?;
    builder
        .set_sample_rate(MP3_SAMPLE_RATE)
        .map_err(|e| anyhow!("LAME: set input sample rate: {e}"))?;
    builder
        .set_output_sample_rate(NonZeroU32::new(MP3_SAMPLE_RATE))
        .map_err(|e| anyhow!("LAME: set output sample rate: {e}"))?;
    // A CBR stream this small (108-byte frames) has no room for the tag, so use VBR.
    builder
        .set_vbr_mode(VbrMode::Mtrh)
        .map_err(|e| anyhow!("LAME: set VBR mode: {e}"))?;
    builder
        .set_vbr_quality(Quality::Ok)
        .map_err(|e| anyhow!("LAME: set VBR quality: {e}"))?;
    // Algorithm quality 7: about twice as fast as the default 5, fine for speech.
    builder
        .set_quality(Quality::Ok)
        .map_err(|e| anyhow!("LAME: set quality: {e}"))?;
    builder
        .set_to_write_vbr_tag(true)
        .map_err(|e| anyhow!("LAME: enable Xing/LAME tag: {e}"))?;
    let mut encoder = builder
        .build()
        .map_err(|e| anyhow!("LAME: initialise encoder: {e}"))?;

    let mut wide = upsample(samples);
    let tail = wide.len() % MP3_FRAME;
    if tail <= MP3_MAX_TRIM && tail < wide.len() {
        wide.truncate(wide.len() - tail);
    }

    // Speech at this setting averages ~2.8 kB per second; reserve for ~4 kB/s.
    let mut mp3 = Vec::with_capacity(samples.len() / 2 + 8 * 1024);
    for chunk in wide.chunks(MP3_CHUNK) {
        mp3.reserve(mp3lame_encoder::max_required_buffer_size(chunk.len()));
        encoder
            .encode_to_vec(MonoPcm(chunk), &mut mp3)
            .map_err(|e| anyhow!("LAME: encode: {e}"))?;
    }
    mp3.reserve(mp3lame_encoder::max_required_buffer_size(0));
    encoder
        .flush_to_vec::<FlushGap>(&mut mp3)
        .map_err(|e| anyhow!("LAME: flush: {e}"))?;

    // LAME starts the stream with a placeholder frame of zeros for the tag;
    // now that the frame count, delay and padding are known, fill it in (the
    // `lame` CLI does the same by seeking back). There is no ID3v2 tag, so the
    // placeholder is at offset 0.
    let tag_len = encoder.lame_tag_size();
    if tag_len == 0 {
        bail!("LAME: Xing/LAME tag was not reserved");
    }
    let mut tag = Vec::with_capacity(tag_len);
    let written = encoder
        .lame_tag_encode_to_vec(&mut tag)
        .ok_or_else(|| anyhow!("LAME: could not produce the Xing/LAME tag"))?;
    mp3.get_mut(..written.get())
        .ok_or_else(|| anyhow!("LAME: tag longer than the stream"))?
        .copy_from_slice(&tag);
    Ok(mp3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_le_bytes([b[i], b[i + 1]])
    }

    fn u32_at(b: &[u8], i: usize) -> u32 {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    }

    fn pcm(wav: &[u8]) -> Vec<i16> {
        wav[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// Frame count from the Xing/Info tag of an MPEG-2 mono stream without ID3v2.
    fn xing_frames(mp3: &[u8]) -> u32 {
        // 4-byte header + 9 bytes of MPEG-2 mono side info, then the tag.
        let tag = &mp3[13..];
        assert!(tag.starts_with(b"Xing") || tag.starts_with(b"Info"));
        let flags = u32::from_be_bytes([tag[4], tag[5], tag[6], tag[7]]);
        assert_eq!(flags & 1, 1, "frame count present");
        u32::from_be_bytes([tag[8], tag[9], tag[10], tag[11]])
    }

    #[test]
    fn wav_header_and_length_for_three_seconds() {
        let clip = synthesize(7, 3).unwrap();
        let wav = &clip.wav;
        let data_len = 3 * 8_000 * 2;
        assert_eq!(wav.len(), 44 + data_len);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32_at(wav, 4) as usize, 36 + data_len);
        assert_eq!(&wav[8..12], b"WAVE");
        assert_eq!(&wav[12..16], b"fmt ");
        assert_eq!(u32_at(wav, 16), 16, "fmt chunk size");
        assert_eq!(u16_at(wav, 20), 1, "PCM format");
        assert_eq!(u16_at(wav, 22), 1, "channels");
        assert_eq!(u32_at(wav, 24), 8_000, "sample rate");
        assert_eq!(u32_at(wav, 28), 16_000, "byte rate");
        assert_eq!(u16_at(wav, 32), 2, "block align");
        assert_eq!(u16_at(wav, 34), 16, "bits per sample");
        assert_eq!(&wav[36..40], b"data");
        assert_eq!(u32_at(wav, 40) as usize, data_len);
    }

    #[test]
    fn audio_is_neither_silent_nor_clipped() {
        for seed in [11, 12, 13] {
            let samples = pcm(&synthesize(seed, 6).unwrap().wav);
            let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
            let mean_square =
                samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64;
            let rms = mean_square.sqrt();
            // Peaks between -12 and -0.5 dBFS, overall RMS between -40 and -15 dBFS.
            assert!((8_200..31_000).contains(&peak), "seed {seed}: peak {peak}");
            assert!((330.0..5_800.0).contains(&rms), "seed {seed}: rms {rms}");
            // Speech with pauses: a good share of quiet samples, and no long digital silence.
            let quiet = samples.iter().filter(|s| s.unsigned_abs() < 300).count();
            assert!(quiet > samples.len() / 10, "seed {seed}: no pauses");
            assert!(samples.windows(400).all(|w| w.iter().any(|&s| s != 0)));
        }
    }

    #[test]
    fn mp3_starts_with_a_frame_or_id3_tag() {
        let clip = synthesize(7, 3).unwrap();
        let mp3 = &clip.mp3;
        assert!(mp3.len() > 1_000, "mp3 is {} bytes", mp3.len());
        let id3 = mp3.starts_with(b"ID3");
        let sync = mp3[0] == 0xFF && mp3[1] & 0xE0 == 0xE0;
        assert!(id3 || sync, "starts with {:02x?}", &mp3[..4]);
        assert!(
            sync,
            "no ID3 tag is written, so the first frame comes first"
        );
        assert_eq!(mp3[1] & 0x18, 0x10, "MPEG-2 (not 2.5)");
        assert_eq!(mp3[1] & 0x06, 0x02, "Layer III");
        assert_eq!((mp3[2] >> 2) & 0x03, 0x02, "16 kHz");
        assert_eq!(mp3[3] >> 6, 3, "mono");
        // The tag frame was filled in (LAME leaves zeros there until asked).
        let frames = xing_frames(mp3);
        assert!(frames > 0);
        let lame = &mp3[13 + 120..];
        assert!(
            lame.starts_with(b"LAME"),
            "LAME extension follows the Xing tag"
        );
    }

    #[test]
    fn mp3_duration_estimate_matches_length() {
        // What ffprobe reports: frames × 576 samples at 16 kHz, encoder delay included.
        for seconds in [1, 2, 3, 4, 9, 12, 13, 17] {
            let samples = vec![0i16; seconds * 8_000];
            let mp3 = encode_mp3(&samples).unwrap();
            let estimate = f64::from(xing_frames(&mp3)) * 576.0 / 16_000.0;
            let error = estimate - seconds as f64;
            assert!(
                (0.0..=0.1).contains(&error),
                "{seconds} s: estimate {estimate}"
            );
        }
    }

    #[test]
    fn mp3_bitrate_is_low() {
        let clip = synthesize(3, 20).unwrap();
        let kbps = clip.mp3.len() as f64 * 8.0 / 20.0 / 1_000.0;
        assert!((12.0..32.0).contains(&kbps), "{kbps:.1} kbit/s");
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        let a = synthesize(42, 4).unwrap();
        let b = synthesize(42, 4).unwrap();
        assert!(a.wav == b.wav, "WAV differs between runs");
        assert!(a.mp3 == b.mp3, "MP3 differs between runs");
    }

    #[test]
    fn different_seeds_differ() {
        let a = synthesize(1, 4).unwrap();
        let b = synthesize(2, 4).unwrap();
        assert_eq!(a.wav.len(), b.wav.len());
        assert!(a.wav != b.wav);
        assert!(a.mp3 != b.mp3);
    }

    #[test]
    fn rejects_empty_and_absurd_lengths() {
        assert!(synthesize(1, 0).is_err());
        assert!(synthesize(1, MAX_SECONDS + 1).is_err());
    }

    #[test]
    fn upsampler_keeps_samples_and_interpolates_smoothly() {
        let input: Vec<i16> = (0..400)
            .map(|i| ((i as f32 * TAU * 500.0 / 8_000.0).sin() * 10_000.0) as i16)
            .collect();
        let out = upsample(&input);
        assert_eq!(out.len(), 2 * input.len());
        for (i, &s) in input.iter().enumerate() {
            assert_eq!(out[2 * i], s);
        }
        // Away from the edges, odd samples sit on the 500 Hz sine at 16 kHz.
        for (j, &s) in out.iter().enumerate().take(700).skip(100) {
            let ideal = (j as f32 * TAU * 500.0 / 16_000.0).sin() * 10_000.0;
            assert!(
                (f32::from(s) - ideal).abs() < 40.0,
                "sample {j}: {s} vs {ideal}"
            );
        }
    }
}
